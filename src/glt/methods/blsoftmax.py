from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from glt.methods.base import METHODS, Method, Output


@METHODS.register("blsoftmax")
class BalancedSoftmax(Method):
    """Balanced Softmax (Ren et al. 2020): cross-entropy on logits + log prior during training, so the
    model's own logits estimate the balanced posterior; plain logits at test time."""

    name = "blsoftmax"
    description = "Balanced Softmax: CE on logits + log(training class prior)"

    @dataclass
    class Settings:
        prior_power: float = 1.0  # 1 = the exact Balanced Softmax; other values interpolate towards CE

    def loss(self, out: Output, labels):
        log_prior = self.ctx.prior.log() * self.settings.prior_power
        return F.cross_entropy(out.logits + log_prior, labels)
