from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from glt.errors import GLTError
from glt.methods.base import METHODS, Method, Output, Stage
from glt.models import GLTModel, create_head
from glt.models.branched import BranchedBackbone


def reversed_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-sample weights of BBN's reversed sampler: class c is drawn with probability proportional to
    1 / n_c (the tail most often), then a uniform image of it."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return 1.0 / counts[labels] ** 2


@METHODS.register("bbn")
class BBN(Method):
    """BBN (Zhou et al. 2020): two branches share the backbone's early layers and each owns a copy of its last
    stage. The conventional branch sees uniformly drawn images, the re-balancing branch reversed-sampled
    ones (class probability ~ 1 / n_c); their features are mixed as 2 * [a * f_c, (1 - a) * f_r] into one
    linear classifier with loss a * CE(y_c) + (1 - a) * CE(y_r), and cumulative learning moves a from 1 to 0
    as 1 - (epoch / epochs)^2. At test time both branches see the same image, features side by side.

    Every mini-batch holds half uniform, half reversed draws (the `environments` sampler, N draws of each
    per epoch as in the original's two loaders), paired in order."""

    name = "bbn"
    description = "BBN: conventional + re-balancing branches with cumulative learning"
    train_defaults = {"optim": {"schedule": "multistep", "gamma": 0.1}}

    @dataclass
    class Settings:
        branch_stages: int = 1  # last backbone stages owned by each branch
        milestones: list[float] = field(default_factory=lambda: [0.6, 0.8])  # fractions of the epochs

    def __init__(self, settings, ctx):
        super().__init__(settings, ctx)
        if ctx.batch_size % 2:
            raise GLTError(
                f"bbn pairs a uniform and a reversed image: data.batch_size must be even, not {ctx.batch_size}"
            )
        self.n = int(np.sum(ctx.class_counts))
        self.mix = 1.0

    def build_model(self, backbone) -> GLTModel:
        branched = BranchedBackbone(backbone, 2, self.settings.branch_stages)
        return GLTModel(branched, create_head("linear", branched.out_features, self.ctx.num_classes))

    def stages(self) -> list[Stage]:
        return [Stage("main", self.ctx.epochs, sampler="environments", milestones=list(self.settings.milestones))]

    def sampler_options(self, stage: Stage) -> dict:
        if stage.sampler != "environments":
            return {}
        labels = self.ctx.labels
        if labels is None:
            raise GLTError("bbn needs the training labels in its Context")
        weights = np.stack([np.ones(len(labels)), reversed_weights(np.asarray(labels), self.ctx.num_classes)])
        return {"env_weights": weights, "num_envs": 2, "samples_per_env": self.n, "batch_size": self.ctx.batch_size}

    def on_epoch_start(self, stage: Stage, epoch: int) -> None:
        self.mix = 1.0 - (epoch / stage.epochs) ** 2  # cumulative learning: conventional first, then re-balanced

    def training_step(self, model, images, labels, index):
        # the sampler tags each index with its environment: row + env * N
        rev = torch.as_tensor(index, device=images.device) >= self.n
        ia, ib = torch.nonzero(~rev).squeeze(1), torch.nonzero(rev).squeeze(1)
        if len(ia) == 0 or len(ib) == 0:  # a batch from one side only (tiny data): pair it with itself
            ia = ib = torch.arange(len(images), device=images.device)
        k = max(len(ia), len(ib))  # pair in order; the shorter side repeats cyclically
        ia, ib = ia.repeat(-(-k // len(ia)))[:k], ib.repeat(-(-k // len(ib)))[:k]
        a = self.mix
        fa = model.backbone.forward_branch(images[ia], 0)
        fb = model.backbone.forward_branch(images[ib], 1)
        features = 2 * torch.cat([a * fa, (1 - a) * fb], dim=1)
        logits = model.head(features)
        loss = a * F.cross_entropy(logits, labels[ia]) + (1 - a) * F.cross_entropy(logits, labels[ib])
        # one row per image for the loop's bookkeeping: each image gets its pair's prediction
        rows_logits = logits.new_empty(len(images), logits.shape[1])
        rows_features = features.new_empty(len(images), features.shape[1])
        for rows in (ia, ib):
            rows_logits[rows], rows_features[rows] = logits, features
        return loss, Output(rows_logits, rows_features, {"bbn_alpha": a}), {"bbn_alpha": a}
