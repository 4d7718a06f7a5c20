from __future__ import annotations

from dataclasses import dataclass

from glt.methods.base import METHODS, Method


@METHODS.register("logit_adj")
class LogitAdjustment(Method):
    """Post-hoc logit adjustment (Menon et al. 2021): train with CE, predict with logits - tau * log prior."""

    name = "logit_adj"
    description = "post-hoc logit adjustment: CE training, predict with logits - tau * log(prior)"

    @dataclass
    class Settings:
        tau: float = 1.0

    def predict_logits(self, model, images):
        return self.forward(model, images).logits - self.settings.tau * self.ctx.prior.log()
