from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from glt.methods.base import METHODS, Method, Output
from glt.search.space import Uniform


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float, detach_factor: bool = True) -> torch.Tensor:
    """Mean over the batch of -(1 - p_y)^gamma * log p_y; gamma 0 is cross-entropy. `detach_factor`: the
    modulating factor (1 - p_y)^gamma is a constant of the backward pass (the original's
    utils/training_utils.py FocalLoss: `pt = logpt.detach().exp()`); false differentiates through it too
    (Lin et al. 2017)."""
    log_p = F.log_softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1)
    p = log_p.detach().exp() if detach_factor else log_p.exp()
    return (-((1 - p) ** gamma) * log_p).mean()


@METHODS.register("focal")
class Focal(Method):
    """Focal loss (Lin et al. 2017): cross-entropy down-weighted on well-classified samples by (1 - p_y)^gamma,
    gamma 2. As in the original (utils/training_utils.py FocalLoss) the modulating factor is held constant in
    the backward pass; `detach_factor=false` differentiates through it as in the focal-loss paper."""

    name = "focal"
    description = "focal loss: -(1 - p_y)^gamma log p_y"
    paper = {"method_args": {"gamma": 2.0, "detach_factor": True}}  # FocalLoss: pt = logpt.detach().exp()
    # Lin et al. 2017 sweep gamma over 0-5 (best 2)
    search_space = {"method_args.gamma": Uniform(0.5, 5.0)}

    @dataclass
    class Settings:
        gamma: float = 2.0
        detach_factor: bool = True  # the original; false: the paper's fully differentiated loss

    def loss(self, out: Output, labels):
        return focal_loss(out.logits, labels, self.settings.gamma, self.settings.detach_factor)
