from __future__ import annotations

from dataclasses import dataclass, field

import torch

from glt.methods.base import METHODS, Method, Output, Stage
from glt.methods.losses import class_balanced_weights, ldam_margins, margin_cross_entropy
from glt.models import GLTModel, create_head
from glt.search.space import Choice, Uniform


def drw_epoch(fraction: float, epochs: int) -> int:
    """The first (0-based) epoch with class-balanced weights: `int(epochs * fraction)`, as the original's
    utils/training_utils.py LDAMLoss.set_weight (`epoch // int(total_epoch * 0.8)`) computes it for any
    number of epochs (80 of 100, 9 of 12)."""
    return int(epochs * fraction)


@METHODS.register("ldam")
class LDAMDRW(Method):
    """LDAM-DRW (Cao et al. 2019): a cosine classifier (logits = s * cos) trained with label-distribution-aware
    margins m_c ~ n_c^(-1/4) (largest 0.5) subtracted from the true-class cosine, and deferred re-weighting:
    class-balanced weights (beta 0.9999) from epoch int(drw_start * epochs) on (`drw_epoch`). The original
    study's schedule: weight decay 2e-4, learning rate x0.01 at 80% and again at 90% of the epochs."""

    name = "ldam"
    description = "LDAM margin loss on a cosine classifier + deferred class-balanced re-weighting"
    train_defaults = {"optim": {"weight_decay": 2e-4, "schedule": "multistep", "gamma": 0.01}}
    # the LDAM entry; milestones are fractions of the epochs (0.8 / 0.9 of 100 epochs = 80 / 90)
    paper = {
        "method_args": {"max_margin": 0.5, "scale": 30.0, "drw_start": 0.8, "beta": 0.9999, "milestones": [0.8, 0.9]},
        "optim": {"weight_decay": 2e-4, "schedule": "multistep", "gamma": 0.01},
    }
    search_space = {
        "method_args.max_margin": Uniform(0.1, 1.0),  # Cao et al. 2019 tune the largest margin; 0.5 theirs
        "method_args.scale": Uniform(10.0, 64.0),  # cosine-softmax scales in use: 16-64 (CosFace 64, LDAM 30)
        "method_args.drw_start": Uniform(0.6, 0.9),  # re-weighting for the last 10-40% of the epochs
        "method_args.beta": Choice((0.99, 0.999, 0.9999)),  # Cui et al. 2019's effective-number betas
    }

    @dataclass
    class Settings:
        max_margin: float = 0.5
        scale: float = 30.0
        drw_start: float = 0.8  # class-balanced weights from epoch int(drw_start * epochs) on
        beta: float = 0.9999
        milestones: list[float] = field(default_factory=lambda: [0.8, 0.9])  # fractions of the epochs

    def __init__(self, settings, ctx):
        super().__init__(settings, ctx)
        self.margins = torch.as_tensor(ldam_margins(ctx.class_counts, settings.max_margin), dtype=torch.float32)
        self.balanced = torch.as_tensor(class_balanced_weights(ctx.class_counts, settings.beta), dtype=torch.float32)
        self.margins, self.balanced = self.margins.to(ctx.device), self.balanced.to(ctx.device)
        self.weight: torch.Tensor | None = None

    def build_model(self, backbone) -> GLTModel:
        head = create_head("cosine", backbone.out_features, self.ctx.num_classes, scale=self.settings.scale)
        return GLTModel(backbone, head)

    def stages(self) -> list[Stage]:
        return [Stage("main", self.ctx.epochs, milestones=list(self.settings.milestones))]

    def on_epoch_start(self, stage: Stage, epoch: int) -> None:
        deferred = epoch >= drw_epoch(self.settings.drw_start, stage.epochs)
        self.weight = self.balanced if deferred else None

    def loss(self, out: Output, labels):
        return margin_cross_entropy(out.logits, labels, self.margins, self.settings.scale, self.weight)
