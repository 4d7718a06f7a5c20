"""LIFT-style fine-tuning of a foundation model (Shi et al. 2024, "Long-Tail Learning with Foundation
Model: Heavy Fine-Tuning Hurts"): a light tuning of the backbone (LoRA adapters through `peft`, or a linear
probe of the frozen backbone; `full` for comparison), a cosine classifier initialised from the CLIP text
embeddings of the class names, and the logit-adjusted loss (cross-entropy on logits + tau * log prior)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from glt.errors import GLTError
from glt.methods.base import METHODS, Method, Output, Stage
from glt.models import GLTModel, create_head
from glt.models.lora import add_lora
from glt.models.text_classifier import init_text_head
from glt.registry import Registry
from glt.search.space import Choice, LogUniform, Uniform

# method_args.tuning -> what the stage trains ("all": every parameter that requires a gradient; LoRA leaves
# only its adapters requiring one) and whether LoRA adapters are added
TUNINGS: Registry[tuple[str, bool]] = Registry("tuning")
TUNINGS.add("full", ("all", False))
TUNINGS.add("linear", ("head_eval", False))  # a linear probe: the backbone frozen, in eval mode
TUNINGS.add("lora", ("all", True))
INIT_HEADS = ("auto", "text", "random")


@METHODS.register("lift")
class LIFT(Method):
    """Fine-tuning with a light touch: `tuning` lora (peft adapters on the backbone's attention and MLP layers;
    only they and the head train) | linear (the head alone) | full; a cosine head of scale `scale`, initialised
    from the text embeddings of class-name prompts (`init_head` text; auto: text for an open_clip backbone,
    random otherwise); the logit-adjusted loss with `tau`, plain logits at test time."""

    name = "lift"
    description = "LIFT-style tuning (LoRA / linear probe / full), text-initialised cosine head, logit-adjusted loss"
    # LIFT's recipe: SGD at lr 0.01 (a pretrained backbone; glt's 0.1 is for training from scratch), cosine
    train_defaults = {"optim": {"lr": 0.01, "schedule": "cosine"}}
    search_space = {
        "method_args.tau": Uniform(0.0, 2.0),  # 0: plain CE, 1: LIFT's logit adjustment
        "method_args.scale": Uniform(15.0, 30.0),  # the range of LIFT's classifier-scale study
        "method_args.lora_r": Choice((4, 8, 16)),
        "optim.lr": LogUniform(1e-3, 0.05),  # around LIFT's 0.01: the common range's 0.5 would wreck a pretrained tower
    }

    @dataclass
    class Settings:
        tuning: str = "lora"  # lora | linear | full
        init_head: str = "auto"  # auto | text | random
        scale: float = 25.0  # cosine head: logits = scale * cos
        tau: float = 1.0  # logit adjustment of the loss
        lora_r: int = 8
        lora_alpha: float = 16.0
        lora_dropout: float = 0.0
        class_names: str | None = None  # for init_head text, as zeroshot's
        templates: str = "imagenet"

    head_initialised = False

    def __init__(self, settings, ctx):
        super().__init__(settings, ctx)
        TUNINGS.get(settings.tuning)  # an unknown name is an error before anything is built
        if settings.init_head not in INIT_HEADS:
            raise GLTError(f"method_args.init_head must be one of {', '.join(INIT_HEADS)}, not '{settings.init_head}'")

    def build_model(self, backbone) -> GLTModel:
        s = self.settings
        if TUNINGS.get(s.tuning)[1]:
            add_lora(backbone, s.lora_r, s.lora_alpha, s.lora_dropout)
        self.model = GLTModel(backbone, create_head("cosine", backbone.out_features, self.ctx.num_classes,
                                                    scale=s.scale))
        return self.model

    def stages(self) -> list[Stage]:
        return [Stage("main", self.ctx.epochs, trainable=TUNINGS.get(self.settings.tuning)[0])]

    def on_epoch_start(self, stage: Stage, epoch: int) -> None:
        # once, when training starts (not at build time: `glt eval` reads the head from the checkpoint)
        if not self.head_initialised:
            init = self.settings.init_head
            if init == "auto":
                init = "text" if hasattr(self.model.backbone, "text_tower") else "random"
            if init == "text":
                s = self.settings
                init_text_head(self.model.head, self.model.backbone, s.class_names, s.templates,
                               getattr(self.ctx, "class_names", None), self.ctx.num_classes)
            self.head_initialised = True

    def loss(self, out: Output, labels):
        return F.cross_entropy(out.logits + self.settings.tau * self.ctx.prior.log(), labels)

    def state_dict(self) -> dict:
        return {"head_initialised": self.head_initialised}

    def load_state_dict(self, state: dict) -> None:
        self.head_initialised = bool(state.get("head_initialised", False))
