"""IRM baseline with IFL's environments (SPEC 6): the wrapped method's loss + an IRMv1 penalty."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from glt.methods.base import WRAPPERS
from glt.methods.ifl import IFL


def irm_penalty(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """IRMv1 (Arjovsky et al. 2019): squared gradient of the risk w.r.t. a dummy classifier scale of 1."""
    scale = torch.ones(1, device=logits.device, requires_grad=True)
    loss = F.cross_entropy(logits * scale, labels)
    (grad,) = torch.autograd.grad(loss, [scale], create_graph=True)
    return (grad**2).sum()


@WRAPPERS.register("irm")
class IRM(IFL):
    """IRM with the same environments as IFL (rebuilt from the model's scores on IFL's schedule):
    the penalty is the sum over environments of the IRMv1 penalty on that environment's samples of the
    batch, weighted 1e-3 and multiplied by 10 at epochs 30, 60 and 90 (of 100, scaled to the run)."""

    name = "irm"
    default_base = "ce"
    description = "IRM (IRMv1 penalty) over IFL's environments"

    @dataclass
    class Settings(IFL.Settings):
        alpha_milestones: list[int] = field(default_factory=lambda: [30, 60, 90])
        alphas: list[float] = field(default_factory=lambda: [1e-3, 1e-2, 1e-1, 1.0])

    def training_step(self, model, images, labels, index):
        if not self.active:
            return self.base.training_step(model, images, labels, index)
        env = (index // self.n).to(labels.device)
        row = (index % self.n).to(self.ctx.device)
        loss, out, logs = self.base.training_step(model, images, labels, row)
        self.record_scores(out, labels, row)
        penalty = sum(irm_penalty(out.logits[env == e], labels[env == e]) for e in env.unique())
        loss = loss + self.alpha(self.epoch) * penalty
        return loss, out, {**logs, "irm_penalty": float(penalty.detach())}

    def after_step(self) -> None:
        self.base.after_step()  # no centers
