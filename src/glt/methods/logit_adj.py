from __future__ import annotations

from dataclasses import dataclass

from glt.methods.base import METHODS, Method
from glt.search.space import Uniform


@METHODS.register("logit_adj")
class LogitAdjustment(Method):
    """Post-hoc logit adjustment (Menon et al. 2021): train with CE, predict with logits - tau * log prior."""

    name = "logit_adj"
    description = "post-hoc logit adjustment: CE training, predict with logits - tau * log(prior)"
    paper = {"method_args": {"tau": 1.0}}  # test_la.py: tro 1.0
    # Menon et al. 2021 find tau between 1 and 2 best, and vary it from 0 to beyond 2
    search_space = {"method_args.tau": Uniform(0.25, 2.5)}

    @dataclass
    class Settings:
        tau: float = 1.0

    def predict_logits(self, model, images):
        return self.forward(model, images).logits - self.settings.tau * self.ctx.prior.log()
