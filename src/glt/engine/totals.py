"""An epoch's running training totals."""

from __future__ import annotations

import torch

from glt.errors import GLTError
from glt.runtime import distributed as dist


class EpochTotals:
    """Training loss / accuracy / method scalars of an epoch, summed on the device (no host sync per
    step) and over ranks at the end; part of a mid-epoch checkpoint."""

    def __init__(self, device, state: dict | None = None):
        self.device = device
        self.sums = torch.zeros(2, device=device, dtype=torch.float64)  # loss * n, hits
        self.n = 0
        self.logs: dict[str, float] = {}
        self.seconds = 0.0
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)  # first step with a NaN / inf loss
        if state:
            self.sums.copy_(state["sums"])
            self.n, self.logs, self.seconds = state["n"], dict(state["logs"]), state["seconds"]

    def add(self, loss, logits, y, step_logs, step: int = 0) -> None:
        n = len(y)
        # on the device, no host sync: `check_finite` reads it where the loop syncs anyway
        self.first_bad = torch.where(torch.isfinite(loss.detach()) | (self.first_bad >= 0), self.first_bad, step)
        self.sums += torch.stack([loss.detach().double() * n, (logits.detach().argmax(1) == y).sum().double()])
        self.n += n
        for k, v in step_logs.items():
            self.logs[k] = self.logs.get(k, 0.0) + v * n

    def state(self, seconds: float) -> dict:
        return {"sums": self.sums.cpu(), "n": self.n, "logs": self.logs, "seconds": seconds}

    def check_finite(self, stage: str, epoch: int, steps: int) -> None:
        """Stop a training whose loss became NaN / inf, before its weights are checkpointed or its epoch
        logged (collective: every rank stops together)."""
        if float(dist.all_reduce_sum((self.first_bad >= 0).double().reshape(1))[0]) == 0:
            return
        s = int(self.first_bad)
        where = f"step {s + 1} of {steps}" if s >= 0 else "on another process"
        raise GLTError(f"the training loss became NaN or infinite in stage '{stage}', epoch {epoch}, {where}; "
                       "stopped before saving it: lower optim.lr, or check the data and the method's settings")

    def summary(self) -> dict:
        keys = sorted(self.logs)
        host = torch.tensor([self.n, *(self.logs[k] for k in keys)], dtype=torch.float64, device=self.device)
        t = dist.all_reduce_sum(torch.cat([self.sums, host])).cpu()
        n = max(float(t[2]), 1.0)
        return {"train_loss": float(t[0]) / n, "train_accuracy": float(t[1]) / n,
                **{k: float(v) / n for k, v in zip(keys, t[3:])}}
