"""IRM baseline with IFL's environments (train_irm_dual.py of the original; docs/fidelity.md): the wrapped
method's loss + a weighted invariance penalty."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from glt.errors import GLTError
from glt.methods.base import WRAPPERS, Stage
from glt.methods.ifl import IFL

PENALTIES = ("original", "irmv1")


def irm_penalty(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """IRMv1 (Arjovsky et al. 2019): squared gradient of the risk w.r.t. a dummy classifier scale of 1."""
    scale = torch.ones(1, device=logits.device, requires_grad=True)
    loss = F.cross_entropy(logits * scale, labels)
    (grad,) = torch.autograd.grad(loss, [scale], create_graph=True)
    return (grad**2).sum()


def original_irm_penalty(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The original's penalty (train_irm_dual.py): the L1 norm of the gradient of the whole batch's
    cross-entropy (both environments together) w.r.t. a per-class logit scale of ones, (1, C)."""
    scale = torch.ones(1, logits.shape[1], device=logits.device, dtype=logits.dtype, requires_grad=True)
    loss = F.cross_entropy(logits * scale, labels)
    (grad,) = torch.autograd.grad(loss, [scale], create_graph=True)
    return grad.abs().sum()


@WRAPPERS.register("irm")
class IRM(IFL):
    """IRM with the same environments as IFL, as the original's train_irm_dual.py (`irm_dual` of its
    config/algorithms_config.yaml) trains it:

    * penalty (`penalty`): `original`, the L1 norm of the gradient of the batch's cross-entropy w.r.t. a
      per-class logit scale (the batch of both environments at once); `irmv1`, the sum over the batch's
      environments of the squared gradient w.r.t. one scalar scale (Arjovsky et al. 2019);
    * weight: 1e-3, multiplied by 10 after epochs 30, 60 and 90 (`irm_alpha` 10 at the end of each
      `decay_milestones` epoch, so 1e-2 from epoch 31 on; of 100, scaled to the run);
    * environments rebuilt from the model's scores after every epoch (`always_update: True`);
      `rebuild_every_epoch=false` rebuilds after IFL's `rebuild_after` epochs instead."""

    name = "irm"
    default_base = "ce"
    description = "IRM penalty over IFL's environments"

    @dataclass
    class Settings(IFL.Settings):
        # epochs (of schedule_epochs) after which the weight takes its next value: alphas[k] applies to the
        # epochs e with k milestones m < e
        alpha_milestones: list[int] = field(default_factory=lambda: [30, 60, 90])
        alphas: list[float] = field(default_factory=lambda: [1e-3, 1e-2, 1e-1, 1.0])
        penalty: str = "original"  # original | irmv1
        rebuild_every_epoch: bool = True  # the original's always_update; false: after `rebuild_after`

    def __init__(self, base, settings, ctx):
        super().__init__(base, settings, ctx)
        if settings.penalty not in PENALTIES:
            raise GLTError(f"wrapper_args.penalty must be one of {', '.join(PENALTIES)}, not '{settings.penalty}'")

    def alpha(self, epoch: int) -> float:
        k = sum(epoch > m for m in self._scaled(self.settings.alpha_milestones))
        return float(self.settings.alphas[k])

    def rebuild_epochs(self) -> list[int]:
        """The (0-based) epochs of the run after which the environments are rebuilt."""
        if self.settings.rebuild_every_epoch:
            return list(range(self.ctx.epochs))
        return sorted(set(self._scaled(self.settings.rebuild_after)))

    def on_epoch_end(self, stage: Stage, epoch: int) -> dict:
        # IFL rebuilds after `rebuild_after` (and after every epoch where it reads `rebuild_every_epoch` itself)
        logs = super().on_epoch_end(stage, epoch)
        if self.active and self.settings.rebuild_every_epoch and "ifl_environments" not in logs:
            logs["ifl_environments"] = self.rebuild()
        return logs

    def training_step(self, model, images, labels, index):
        if not self.active:
            return self.base.training_step(model, images, labels, index)
        env = (index // self.n).to(labels.device)
        row = (index % self.n).to(self.ctx.device)
        loss, out, logs = self.base.training_step(model, images, labels, row)
        self.record_scores(out, labels, row)
        if self.settings.penalty == "original":
            penalty = original_irm_penalty(out.logits, labels)
        else:
            penalty = sum(irm_penalty(out.logits[env == e], labels[env == e]) for e in env.unique())
        loss = loss + self.alpha(self.epoch) * penalty
        return loss, out, {**logs, "irm_penalty": float(penalty.detach())}

    def after_step(self) -> None:
        self.base.after_step()  # no centers
