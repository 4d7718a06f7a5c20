from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from glt.methods.base import METHODS, Method, Output
from glt.search.space import Uniform


@METHODS.register("logit_adj_loss")
class LogitAdjustedLoss(Method):
    """Logit-adjusted loss (Menon et al. 2021): cross-entropy on logits + tau * log(training prior), plain
    logits at test time. tau = 1 is the same loss as Balanced Softmax; `logit_adj` is the post-hoc variant."""

    name = "logit_adj_loss"
    description = "logit-adjusted loss: CE on logits + tau * log(prior), plain logits at test time"
    search_space = {"method_args.tau": Uniform(0.25, 2.5)}  # as logit_adj's (Menon et al. 2021)

    @dataclass
    class Settings:
        tau: float = 1.0

    def loss(self, out: Output, labels):
        return F.cross_entropy(out.logits + self.settings.tau * self.ctx.prior.log(), labels)
