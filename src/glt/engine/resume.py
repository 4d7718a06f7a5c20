"""Where a resumed training restarts, and what it restores there.

A resume checkpoint (last.pt) is written at the end of every epoch and, with `checkpoint_every`, inside
one. From it the loop restores the weights (model, extra modules, method state), then for the stage it
stopped in the optimizer, scheduler and gradient scaler, and this rank's RNG: at the start of the next
epoch, or for a mid-epoch checkpoint inside the epoch after the steps already trained, with that
epoch's partial totals and method state (e.g. IFL's scores so far). Earlier stages are not trained again."""

from __future__ import annotations

from dataclasses import dataclass

from glt.errors import GLTError
from glt.runtime import distributed as dist
from glt.runtime.checkpoint import set_rng_state


@dataclass
class ResumePoint:
    stage: int = 0  # the stage index the loop (re)starts in
    epoch: int = 0  # the epoch of that stage it (re)starts at
    step: int = 0  # steps of that epoch already trained (a mid-epoch checkpoint), else 0
    best: float = -1.0  # the stage's best selectable validation accuracy so far
    ckpt: dict | None = None  # the resume checkpoint; None for a new run
    mine: dict | None = None  # this rank's part of it (rng; partial totals and method state mid-epoch)

    @classmethod
    def from_checkpoint(cls, ckpt: dict, world: int) -> "ResumePoint":
        """A mid-epoch checkpoint needs the number of processes that wrote it."""
        ranks = ckpt["ranks"]
        if ckpt["step"] and len(ranks) != world:
            raise GLTError(f"the checkpoint was written mid-epoch by {len(ranks)} process(es); resume it with the "
                           f"same number of processes (now {world})")
        mine = ranks[dist.rank()] if len(ranks) == world else ranks[0]
        epoch, step = (ckpt["epoch"], ckpt["step"]) if ckpt["step"] else (ckpt["epoch"] + 1, 0)
        return cls(ckpt["stage_index"], epoch, step, ckpt["best"], ckpt, mine)

    def resumes(self, stage: int) -> bool:
        """Whether stage `stage` continues from the checkpoint (rather than starting afresh)."""
        return self.ckpt is not None and stage == self.stage

    def mid_epoch(self, stage: int, epoch: int) -> bool:
        return self.resumes(stage) and epoch == self.epoch and self.step > 0

    def restore_stage(self, optimizer, scheduler, precision) -> None:
        """The stage's optimizer, schedule and scaler; the RNG of the epoch about to start (unless inside one)."""
        optimizer.load_state_dict(self.ckpt["optimizer"])
        scheduler.load_state_dict(self.ckpt["scheduler"])
        precision.load_state_dict(self.ckpt.get("scaler", {}))
        if not self.step:
            set_rng_state(self.mine["rng"])

    def restore_mid_epoch(self, method) -> None:
        """Inside the epoch, after the loader drew its seed (as the interrupted run's state was)."""
        method.load_state_dict(self.mine["method"])
        set_rng_state(self.mine["rng"])

    @property
    def partial(self) -> dict:
        return self.mine["partial"]
