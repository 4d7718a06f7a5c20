"""CLIP zero-shot classification (Radford et al. 2021): the classifier is the text tower's embedding of
prompts made from the class names ("a photo of a {}."), averaged over templates; an image's logits are
logit_scale * cos(image embedding, class embedding). Nothing is trained."""

from __future__ import annotations

from dataclasses import dataclass

from glt.methods.base import METHODS, Method, Stage
from glt.models import GLTModel, create_head
from glt.models.text_classifier import init_text_head


def text_head(method: Method, backbone, head) -> float:
    """The head's weights from the text tower, with the method's class_names / templates settings (the
    benchmark's class names when the Context carries them); returns CLIP's logit scale."""
    s, ctx = method.settings, method.ctx
    return init_text_head(head, backbone, s.class_names, s.templates, getattr(ctx, "class_names", None),
                          ctx.num_classes)


@METHODS.register("zeroshot")
class ZeroShot(Method):
    """CLIP zero-shot: needs an `open_clip:<arch>` backbone. The classifier is built from the class names
    (method_args.class_names: a file of one name per class, else the benchmark's) and prompt templates
    (method_args.templates: imagenet | simple | a file) by open_clip's tokenizer and text tower, when the
    run starts; a checkpoint keeps it, so `glt eval` needs no text tower. Like tau_norm with init_from, the
    one stage steps once with learning rate 0, so the loop scores the model and writes eval.json."""

    name = "zeroshot"
    description = "CLIP zero-shot: classifier from class-name prompts through the text tower, no training"
    # declared for whoever trains every method (the zoo sweep, the tests): this one needs an open_clip backbone
    needs_text_tower = True

    @dataclass
    class Settings:
        class_names: str | None = None  # a file: one name per class (text lines or a JSON list); None: the benchmark's
        templates: str = "imagenet"  # imagenet (open_clip's 80 CLIP prompts) | simple | a file, one template a line

    logit_scale = 1.0
    built = False

    def build_model(self, backbone) -> GLTModel:
        self.model = GLTModel(backbone, create_head("cosine", backbone.out_features, self.ctx.num_classes))
        return self.model

    def stages(self) -> list[Stage]:
        # a single image, learning rate 0, the backbone in eval mode: the loop's scoring and files, no change
        return [Stage("zeroshot", 1, "weighted", "head_eval", lr=0.0)]

    def sampler_options(self, stage: Stage) -> dict:
        return {"num_samples": 1}

    def on_epoch_start(self, stage: Stage, epoch: int) -> None:
        if not self.built:
            self.logit_scale = text_head(self, self.model.backbone, self.model.head)
            self.built = True
        self.model.head.scale = self.logit_scale

    def state_dict(self) -> dict:
        return {"built": self.built, "logit_scale": self.logit_scale}

    def load_state_dict(self, state: dict) -> None:
        self.built = bool(state.get("built", False))
        self.logit_scale = float(state.get("logit_scale", 1.0))
        if getattr(self, "model", None) is not None:
            self.model.head.scale = self.logit_scale
