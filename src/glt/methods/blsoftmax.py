from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from glt.methods.base import METHODS, Method, Output
from glt.search.space import Uniform


@METHODS.register("blsoftmax")
class BalancedSoftmax(Method):
    """Balanced Softmax (Ren et al. 2020): cross-entropy on logits + log prior during training, so the
    model's own logits estimate the balanced posterior; plain logits at test time."""

    name = "blsoftmax"
    description = "Balanced Softmax: CE on logits + log(training class prior)"
    paper = {"method_args": {"prior_power": 1.0}}  # prior = the training class frequencies
    # half to one and a half times the exact log prior: between CE-like and over-balanced
    search_space = {"method_args.prior_power": Uniform(0.5, 1.5)}

    @dataclass
    class Settings:
        prior_power: float = 1.0  # 1 = the exact Balanced Softmax; other values interpolate towards CE

    def loss(self, out: Output, labels):
        log_prior = self.ctx.prior.log() * self.settings.prior_power
        return F.cross_entropy(out.logits + log_prior, labels)
