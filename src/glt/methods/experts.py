"""The multi-expert model RIDE and TADE share: experts on the backbone's shared early layers, each with its
own copy of the last stages and a cosine classifier."""

from __future__ import annotations

from glt.methods.base import Method, Output
from glt.models import GLTModel, create_head
from glt.models.branched import BranchedBackbone


class MultiExpert(Method):
    """Experts that share the backbone's early layers and each own a copy of its last `expert_stages` stages
    and a cosine classifier (scale s). The prediction is the experts' mean logit; `Output.features` holds
    the experts' features side by side and `Output.extra["expert_logits"]` each expert's logits (B, E, C).

    Expert width (the original's models/ResNet_RIDE.py with `reduce_dimension: True`, used by RIDE and TADE on
    every benchmark): each expert's layer3 and layer4 are built with 3/4 of the planes (192 / 384 instead of
    256 / 512), so a ResNeXt-50 expert ends in 1536 features (3 experts: 4608) and the expert-owned layers are
    fresh, independent draws. `expert_width` 0.75 does the same on any ResNet / ResNeXt; on `small_cnn` it
    narrows the two expert-owned stages from 4w / 8w to 3w / 6w channels (the same 3/4 rule). `expert_width`
    1.0 keeps the full width (the layers copied from the backbone; needed to keep pretrained weights)."""

    needs_images = "its experts own copies of the backbone's last stages"

    num_experts = 3
    # the head's `compares_by_angle` (glt.models.heads); None: as its cosine experts, i.e. True
    experts_compare_by_angle: bool | None = None

    def build_model(self, backbone) -> GLTModel:
        s = self.settings
        experts = BranchedBackbone(backbone, self.num_experts, s.expert_stages, width=s.expert_width,
                                   init=s.expert_init)
        head = create_head("multi_expert", experts.out_features, self.ctx.num_classes,
                           num_experts=self.num_experts, expert_head="cosine", scale=s.scale,
                           compares_by_angle=self.experts_compare_by_angle)
        return GLTModel(experts, head)

    def forward(self, model, images) -> Output:
        features = model.forward_features(images)
        expert_logits = model.head.expert_logits(features)
        return Output(expert_logits.mean(1), features, {"expert_logits": expert_logits})
