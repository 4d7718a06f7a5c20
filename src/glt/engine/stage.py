"""The parts of a training stage that do not depend on the data: which parameters train, the optimizer,
the train mode, and the method's step as one module (DistributedDataParallel wraps it)."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf


def stage_parameters(model, extra, trainable: str) -> list:
    if trainable == "all":
        return list(model.parameters()) + list(extra.parameters())
    if trainable in ("head", "head_eval"):
        return list(model.head.parameters())
    raise ValueError(f"unknown trainable '{trainable}'")


def stage_optim(optim_cfg, stage):
    """The optimizer settings of a stage: the method's own milestones (fractions of the stage's epochs)
    apply unless the config names milestones itself."""
    if stage.milestones is None or optim_cfg.milestones:
        return optim_cfg
    return OmegaConf.merge(optim_cfg, {"milestones": [round(f * stage.epochs) for f in stage.milestones]})


def stage_optimizer(optim_cfg, stage, params) -> torch.optim.SGD:
    lr = stage.lr if stage.lr is not None else optim_cfg.lr
    return torch.optim.SGD(params, lr=lr, momentum=optim_cfg.momentum, weight_decay=optim_cfg.weight_decay,
                           nesterov=optim_cfg.nesterov and optim_cfg.momentum > 0)


def set_train_mode(model, trainable: str) -> None:
    """Train mode for the stage. "head" and "head_eval" freeze the backbone's parameters; "head" leaves the
    backbone in train mode, as the original's train_stage2.py (its BatchNorm layers normalise with batch
    statistics and keep updating their running statistics), "head_eval" puts it in eval mode
    (docs/fidelity.md, section A)."""
    model.train()
    if trainable in ("head", "head_eval"):
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        if trainable == "head_eval":
            model.backbone.eval()


class StepModule(torch.nn.Module):
    """A method's training step as a module's forward, so DistributedDataParallel arms its gradient
    synchronisation whatever the method calls inside (forward_features, several heads, a twin model)."""

    def __init__(self, method, model, extra):
        super().__init__()
        self.model, self.extra = model, extra
        self.method = method

    def forward(self, images, labels, index):
        return self.method.training_step(self.model, images, labels, index)


def wrap_step(setup):
    """The step module of `setup`, under DistributedDataParallel when several processes train."""
    step = StepModule(setup.method, setup.model, setup.extra)
    if setup.world == 1:
        return step
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [setup.device] if setup.device.type == "cuda" else None
    return DDP(step, device_ids=ids)


def last_step_lr(scheduler) -> float:
    """The learning rate of the epoch's last optimizer step (the scheduler has stepped past it already; with
    the per-epoch schedule, the epoch's learning rate)."""
    return scheduler.base_lrs[0] * scheduler.lr_lambdas[0](max(0, scheduler.last_epoch - 1))
