"""Learning-rate schedules as a per-step multiplier (so cosine decays smoothly inside an epoch)."""

from __future__ import annotations

import math

from torch.optim.lr_scheduler import LambdaLR

from glt.errors import GLTError

SCHEDULES = ("cosine", "step", "multistep", "constant")


def lr_factor(optim_cfg, epochs: int, steps_per_epoch: int):
    if optim_cfg.schedule not in SCHEDULES:
        raise GLTError(f"optim.schedule must be one of {', '.join(SCHEDULES)}, not '{optim_cfg.schedule}'")
    total = max(1, epochs * steps_per_epoch)
    warmup = optim_cfg.warmup_epochs * steps_per_epoch
    milestones = sorted(optim_cfg.milestones)
    # plain values: the factor runs every step and OmegaConf attribute access is slow
    schedule, gamma, step_size = str(optim_cfg.schedule), float(optim_cfg.gamma), optim_cfg.step_size

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        epoch = step / steps_per_epoch
        if schedule == "cosine":
            t = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
        if schedule == "step":
            return gamma ** int(epoch // step_size)
        if schedule == "multistep":
            return gamma ** sum(epoch >= m for m in milestones)
        return 1.0

    return factor


def build_scheduler(optimizer, optim_cfg, epochs: int, steps_per_epoch: int) -> LambdaLR:
    return LambdaLR(optimizer, lr_factor(optim_cfg, epochs, steps_per_epoch))
