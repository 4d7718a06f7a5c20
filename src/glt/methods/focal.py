from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from glt.methods.base import METHODS, Method, Output


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float) -> torch.Tensor:
    """Mean over the batch of -(1 - p_y)^gamma * log p_y; gamma 0 is cross-entropy."""
    log_p = F.log_softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1)
    return (-((1 - log_p.exp()) ** gamma) * log_p).mean()


@METHODS.register("focal")
class Focal(Method):
    """Focal loss (Lin et al. 2017): cross-entropy down-weighted on well-classified samples by (1 - p_y)^gamma.
    The modulating factor is differentiated as in the paper (the study's code detached it)."""

    name = "focal"
    description = "focal loss: -(1 - p_y)^gamma log p_y"

    @dataclass
    class Settings:
        gamma: float = 2.0

    def loss(self, out: Output, labels):
        return focal_loss(out.logits, labels, self.settings.gamma)
