from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from glt.methods.base import METHODS, Output, Stage
from glt.methods.experts import MultiExpert
from glt.methods.losses import class_balanced_weights, ldam_margins, margin_cross_entropy
from glt.search.space import Uniform


def reweight_epoch(fraction: float, epochs: int) -> int:
    """The last epoch (0-based) without RIDE's re-weighting: `fraction` of the run's epochs (80 of 100)."""
    return int(round(fraction * epochs))


def diversity_weights(class_counts: np.ndarray, factor: float) -> np.ndarray:
    """RIDE's per-class diversity temperatures once re-weighting is on: C * prior * factor + 1 - factor,
    divided by their maximum."""
    prior = np.asarray(class_counts, dtype=np.float64) / np.sum(class_counts)
    w = len(prior) * prior * factor + 1 - factor
    return w / w.max()


@METHODS.register("ride")
class RIDE(MultiExpert):
    """RIDE (Wang et al. 2021) without routing: 3 experts, each trained with the LDAM margin loss (s 30, max
    margin 0.5) plus a diversity term `diversity_factor * T^2 * KL(softmax(mean / T) || softmax(expert / T))`
    (the mean held constant; factor -0.2: experts are pushed apart). After `reweight_after` of the epochs
    (epoch > 0.8 * epochs, 0-based: from epoch 81 of 100, the original's utils/training_utils.py RIDELoss
    `set_epoch`: `epoch > reweight_epoch` with reweight_epoch 80), the margin loss uses class-balanced weights
    (beta 0.9999) and the temperature becomes per-class. The study's schedule: weight decay 2e-4, learning
    rate x0.1 at 60% and 80% of the epochs. Experts: see `MultiExpert` (reduced width by default)."""

    name = "ride"
    description = "RIDE: 3 experts with LDAM individual losses and a diversity loss"
    train_defaults = {"optim": {"weight_decay": 2e-4, "schedule": "multistep", "gamma": 0.1}}
    paper = {
        # models/ResNet_RIDE.py reduce_dimension: each expert's layer3 / layer4 at 3/4 width (1536 features)
        "method_args": {"num_experts": 3, "scale": 30.0, "max_margin": 0.5, "diversity_factor": -0.2,
                        "milestones": [0.6, 0.8], "expert_width": 0.75, "reweight_after": 0.8},
        # weight decay 2e-4: the RIDE entry's optim_params (also the method's default)
        "optim": {"weight_decay": 2e-4, "schedule": "multistep", "gamma": 0.1},
    }
    search_space = {
        "method_args.max_margin": Uniform(0.1, 1.0),  # as LDAM's
        "method_args.scale": Uniform(10.0, 64.0),
        # Wang et al. 2021's diversity weight is -0.2; 0 turns the term off, below -0.5 the experts diverge
        "method_args.diversity_factor": Uniform(-0.5, 0.0),
    }

    @dataclass
    class Settings:
        num_experts: int = 3
        expert_stages: int = 2  # last backbone stages owned by each expert (ResNeXt: layer3 and layer4)
        # channel width of the expert-owned stages: 0.75 = the original's reduce_dimension; 1.0 = full width
        expert_width: float = 0.75
        # full-width experts: auto (independent draws unless the backbone is pretrained) | independent | copy
        expert_init: str = "auto"
        scale: float = 30.0
        max_margin: float = 0.5
        diversity_factor: float = -0.2
        diversity_temperature: float = 1.0
        # re-weighting applies to epochs e > reweight_after * epochs (0-based; 80 of 100: from epoch 81 on)
        reweight_after: float = 0.8
        beta: float = 0.9999
        reweight_factor: float = 0.02
        milestones: list[float] = field(default_factory=lambda: [0.6, 0.8])  # fractions of the epochs

    def __init__(self, settings, ctx):
        super().__init__(settings, ctx)
        self.num_experts = settings.num_experts
        counts = ctx.class_counts
        self.margins = torch.as_tensor(ldam_margins(counts, settings.max_margin), dtype=torch.float32).to(ctx.device)
        self.balanced = torch.as_tensor(class_balanced_weights(counts, settings.beta), dtype=torch.float32)
        self.balanced = self.balanced.to(ctx.device)
        self.temperatures = torch.as_tensor(
            settings.diversity_temperature * diversity_weights(counts, settings.reweight_factor), dtype=torch.float32
        ).to(ctx.device)
        self.temperature_mean = float(self.temperatures.mean())
        self.reweight = False

    def stages(self) -> list[Stage]:
        return [Stage("main", self.ctx.epochs, milestones=list(self.settings.milestones))]

    def on_epoch_start(self, stage: Stage, epoch: int) -> None:
        self.reweight = epoch > reweight_epoch(self.settings.reweight_after, stage.epochs)

    def loss(self, out: Output, labels):
        s = self.settings
        weight = self.balanced if self.reweight else None
        temp = self.temperatures[None] if self.reweight else s.diversity_temperature
        t2 = (self.temperature_mean if self.reweight else s.diversity_temperature) ** 2
        target = F.softmax(out.logits.detach() / temp, dim=1)
        total = 0.0
        for logits in out.extra["expert_logits"].unbind(1):
            total = total + margin_cross_entropy(logits, labels, self.margins, s.scale, weight)
            if s.diversity_factor:
                kl = F.kl_div(F.log_softmax(logits / temp, dim=1), target, reduction="batchmean")
                total = total + s.diversity_factor * t2 * kl
        return total
