"""The checkpoints of a training: best.pt (the selected epoch of each stage) and last.pt (resume)."""

from __future__ import annotations

from glt.runtime import distributed as dist
from glt.runtime.checkpoint import checkpoint_meta, rng_state, save_checkpoint
from glt.runtime.run_dir import RunDir


class Checkpointer:
    """best.pt: the epoch with the best validation accuracy among the selectable ones (every
    `select_every`-th epoch and the stage's last, as the original saves and selects); each stage selects
    its own, the last stage's is tested. last.pt: at the end of every epoch, and every `checkpoint_every`
    steps inside one. Rank 0 writes; every rank calls (the RNG states are gathered)."""

    def __init__(self, run: RunDir, setup, select_every: int, checkpoint_every: int = 0):
        self.run, self.setup = run, setup
        self.select_every, self.checkpoint_every = select_every, checkpoint_every
        self.best = -1.0

    def weights(self) -> dict:
        s = self.setup
        return {"model": s.model.state_dict(), "extra": s.extra.state_dict(), "method": s.method.state_dict(),
                "meta": checkpoint_meta(s.cfg.method, s.num_classes, s.cfg.model.backbone)}

    def due_inside_epoch(self, done: int, steps: int) -> bool:
        """A mid-epoch last.pt after `done` of `steps` steps (the epoch's end writes its own)."""
        return bool(self.checkpoint_every) and done % self.checkpoint_every == 0 and done < steps

    def save_last(self, optimizer, scheduler, stage: int, epoch: int, step: int, partial=None, weights=None) -> None:
        """The resume checkpoint. `step` > 0: written inside the epoch after that many steps, with every
        rank's RNG, partial totals and method state (e.g. IFL's scores of the epoch so far); at the end
        of an epoch ranks agree on the method state and only their RNG differs."""
        mine = {"rng": rng_state()}
        if step:
            mine.update(partial=partial, method=self.setup.method.state_dict())
        ranks = dist.gather_object(mine)
        if dist.is_main():
            save_checkpoint(self.run.last, {
                **(weights or self.weights()), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": self.setup.precision.state_dict(),
                "stage_index": stage, "epoch": epoch, "step": step, "best": self.best, "ranks": ranks,
            })

    def end_of_epoch(self, optimizer, scheduler, stage: int, epoch: int, epochs: int, val_accuracy: float) -> None:
        """best.pt if this epoch is selectable and better, then last.pt."""
        weights = self.weights()
        selectable = epoch % self.select_every == 0 or epoch == epochs - 1
        if selectable and val_accuracy > self.best:
            self.best = val_accuracy
            if dist.is_main():
                save_checkpoint(self.run.best, {**weights, "stage_index": stage, "epoch": epoch,
                                                "val_accuracy": self.best})
        self.save_last(optimizer, scheduler, stage, epoch, 0, weights=weights)
