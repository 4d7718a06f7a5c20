"""Learning-rate schedules as a per-step multiplier of a LambdaLR that the loop steps after every
optimizer step (so a run resumed inside an epoch continues the same sequence).

`optim.schedule_granularity`: "epoch" (default) holds the rate for a whole epoch and changes it between
epochs, as the original's train scripts step CosineAnnealingLR(optimizer, num_epochs, eta_min=0) / StepLR /
MultiStepLR once per epoch (utils/training_utils.py: create_scheduler; docs/fidelity.md, section A);
"step" moves it at every optimizer step (cosine then decays smoothly inside an epoch)."""

from __future__ import annotations

import math

from torch.optim.lr_scheduler import LambdaLR

from glt.errors import GLTError

SCHEDULES = ("cosine", "step", "multistep", "constant")
GRANULARITIES = ("epoch", "step")


def lr_factor(optim_cfg, epochs: int, steps_per_epoch: int):
    if optim_cfg.schedule not in SCHEDULES:
        raise GLTError(f"optim.schedule must be one of {', '.join(SCHEDULES)}, not '{optim_cfg.schedule}'")
    granularity = str(optim_cfg.get("schedule_granularity", "epoch"))
    if granularity not in GRANULARITIES:
        raise GLTError(f"optim.schedule_granularity must be one of {', '.join(GRANULARITIES)}, not '{granularity}'")
    steps_per_epoch = max(1, steps_per_epoch)
    # in epochs or in steps: the unit the rate changes by
    unit = 1 if granularity == "step" else steps_per_epoch
    total = max(1, epochs * steps_per_epoch // unit)
    warmup = optim_cfg.warmup_epochs * steps_per_epoch // unit
    milestones = sorted(optim_cfg.milestones)
    # plain values: the factor runs every step and OmegaConf attribute access is slow
    schedule, gamma, step_size = str(optim_cfg.schedule), float(optim_cfg.gamma), optim_cfg.step_size

    def factor(step: int) -> float:
        t = step // unit  # steps or whole epochs done
        if t < warmup:
            return (t + 1) / warmup
        epoch = step / steps_per_epoch
        if schedule == "cosine":
            frac = (t - warmup) / max(1, total - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
        if schedule == "step":
            return gamma ** int(epoch // step_size)
        if schedule == "multistep":
            return gamma ** sum(epoch >= m for m in milestones)
        return 1.0

    return factor


def build_scheduler(optimizer, optim_cfg, epochs: int, steps_per_epoch: int) -> LambdaLR:
    return LambdaLR(optimizer, lr_factor(optim_cfg, epochs, steps_per_epoch))
