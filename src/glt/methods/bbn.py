from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from glt.data.env_index import EnvIndex
from glt.errors import GLTError
from glt.methods.base import METHODS, Method, Output, Stage
from glt.models import GLTModel, create_head
from glt.models.branched import BranchedBackbone


def reversed_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-sample weights of BBN's reversed sampler: class c is drawn with probability proportional to
    1 / n_c (the tail most often), then a uniform image of it."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return 1.0 / counts[labels] ** 2


def bbn_alpha(epoch: int, epochs: int, rule: str = "original") -> float:
    """Cumulative learning's weight of the conventional branch at 0-based `epoch` of `epochs`.
    original: 1 - ((epoch - 1) / epochs)^2, train_bbn.py's parabolic decay evaluated with its 0-based epoch
    (1 - 1e-4 at epoch 0, 1 at epoch 1, then decreasing); bbn: 1 - (epoch / epochs)^2, the same parabola
    with the BBN authors' 1-based epochs (1 at the first epoch)."""
    if rule == "original":
        return 1.0 - ((epoch - 1) / epochs) ** 2
    if rule == "bbn":
        return 1.0 - (epoch / epochs) ** 2
    raise GLTError(f"bbn method_args.alpha_rule must be original or bbn, not '{rule}'")


@METHODS.register("bbn")
class BBN(Method):
    """BBN (Zhou et al. 2020) as the original trains it (train_bbn.py, models/ResNet_BBN.py): two branches
    share the backbone up to its last residual block, and each owns its own copy of that block (`branch_blocks`
    1: the original's `cb_block` / `rb_block` after layer4's first two Bottlenecks; on `small_cnn`, its last
    stage), drawn independently unless the backbone is pretrained (`branch_init`). The conventional branch
    sees uniformly drawn images, the re-balancing branch reversed-sampled ones (class probability ~ 1 / n_c);
    their features are mixed as 2 * [a * f_c, (1 - a) * f_r] into one linear classifier with loss
    a * CE(y_c) + (1 - a) * CE(y_r), and cumulative learning moves a from 1 to 0 (`bbn_alpha`). At test
    time both branches see the same image, features side by side.

    Batches (`branch_batch`): `full`, the original's two loaders of data.batch_size images each (batch_split
    false): every step feeds data.batch_size uniform draws to one branch and data.batch_size reversed draws to
    the other (2 x data.batch_size images a step, N / data.batch_size steps an epoch: `Stage.batch_scale` 2);
    `split`: one batch of data.batch_size holds half
    of each (2N / data.batch_size steps). Draws are paired in order."""

    needs_images = "its two branches own copies of the backbone's last block"

    name = "bbn"
    description = "BBN: conventional + re-balancing branches with cumulative learning"
    train_defaults = {"optim": {"schedule": "multistep", "gamma": 0.1}}
    # BBN's networks entry is models/ResNet_BBN.py bbn_resnet50: a plain ResNet-50 (not ResNeXt), whose last
    # bottleneck is doubled into the two branches; train_bbn.py: l = 1 - ((epoch - 1) / num_epoch)^2, and two
    # loaders of batch_size images each
    paper = {"model": {"backbone": "resnet50"},
             "method_args": {"milestones": [0.6, 0.8], "branch_blocks": 1, "alpha_rule": "original",
                             "branch_batch": "full"},
             "optim": {"schedule": "multistep", "gamma": 0.1}}

    @dataclass
    class Settings:
        # residual blocks at the end of the backbone owned by each branch (1: the original); null: the last
        # `branch_stages` whole stages
        branch_blocks: int | None = 1
        branch_stages: int = 1
        branch_init: str = "auto"  # auto (independent unless the backbone is pretrained) | independent | copy
        alpha_rule: str = "original"  # original: 1 - ((e - 1) / E)^2 | bbn: 1 - (e / E)^2 (0-based e)
        branch_batch: str = "full"  # full: data.batch_size images per branch a step | split: half each
        milestones: list[float] = field(default_factory=lambda: [0.6, 0.8])  # fractions of the epochs

    def __init__(self, settings, ctx):
        super().__init__(settings, ctx)
        if settings.branch_batch not in ("full", "split"):
            raise GLTError(f"bbn method_args.branch_batch must be full or split, not '{settings.branch_batch}'")
        bbn_alpha(0, 1, settings.alpha_rule)  # validate the rule now
        self.batch_scale = 2 if settings.branch_batch == "full" else 1
        if self.batch_scale == 1 and ctx.batch_size % 2:
            raise GLTError(
                f"bbn pairs a uniform and a reversed image: data.batch_size must be even, not {ctx.batch_size}"
            )
        self.n = int(np.sum(ctx.class_counts))
        self.index = EnvIndex(self.n)  # the sampler's tags: environment 0 uniform, 1 reversed
        self.mix = 1.0

    def build_model(self, backbone) -> GLTModel:
        s = self.settings
        branched = BranchedBackbone(backbone, 2, s.branch_stages, branch_blocks=s.branch_blocks, init=s.branch_init)
        return GLTModel(branched, create_head("linear", branched.out_features, self.ctx.num_classes,
                                              bias=self.ctx.head_bias))

    def stages(self) -> list[Stage]:
        return [Stage("main", self.ctx.epochs, sampler="environments", milestones=list(self.settings.milestones),
                      batch_scale=self.batch_scale)]

    def sampler_options(self, stage: Stage) -> dict:
        if stage.sampler != "environments":
            return {}
        labels = self.ctx.labels
        if labels is None:
            raise GLTError("bbn needs the training labels in its Context")
        weights = np.stack([np.ones(len(labels)), reversed_weights(np.asarray(labels), self.ctx.num_classes)])
        # N draws from each side an epoch, as the original's two loaders; a step holds batch_scale x batch
        batch = self.ctx.batch_size * stage.batch_scale
        return {"env_weights": weights, "num_envs": 2, "samples_per_env": self.n, "batch_size": batch}

    def on_epoch_start(self, stage: Stage, epoch: int) -> None:
        # cumulative learning: conventional first, then re-balanced
        self.mix = bbn_alpha(epoch, stage.epochs, self.settings.alpha_rule)

    def training_step(self, model, images, labels, index):
        rev = self.index.envs(torch.as_tensor(index, device=images.device)) == 1
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
        # bbn_branch_batch: images each branch saw this step (data.batch_size with branch_batch=full)
        logs = {"bbn_alpha": a, "bbn_branch_batch": float(k)}
        return loss, Output(rows_logits, rows_features, {"bbn_alpha": a}), logs
