from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from glt.methods.base import METHODS, Method
from glt.models import GLTModel
from glt.models.branched import reinitialize, resolve_init
from glt.runtime import distributed as dist
from glt.search.space import Uniform


def generalized_ce(logits: torch.Tensor, labels: torch.Tensor, q: float) -> torch.Tensor:
    """Per-sample generalized cross-entropy as LfF trains its biased model: CE * q * p_y^q with p_y held
    constant, whose gradient is that of 1 - p_y^q: it favours the samples that are already easy."""
    p_y = F.softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1).detach()
    return F.cross_entropy(logits, labels, reduction="none") * q * p_y**q


@METHODS.register("lff")
class LearningFromFailure(Method):
    """Learning from Failure (Nam et al. 2020) as the original trains it (train_lff.py): a biased twin model
    (same architecture, its own random initial weights: the original builds it with a second `create_model`)
    is trained with generalized cross-entropy (q 0.7) so it latches on to easy, shortcut-aligned samples;
    the debiased model (the one evaluated) weights each sample's cross-entropy by l_b / (l_b + l_d + 1e-8),
    l_b and l_d the two models' cross-entropies of the sample in the current batch.

    `ema=0.7, class_max=true` is the LfF paper's (and its authors' code's) form: l_b, l_d are per-sample
    moving averages across epochs (0.7), each divided by the largest average of the sample's class.
    `biased_init`: auto (independent draws unless the backbone is pretrained, whose weights both models
    then keep) | independent | copy (the biased model starts from the debiased model's weights)."""

    needs_images = "it trains a second, biased copy of the backbone"

    name = "lff"
    description = "Learning from Failure: a GCE-trained biased model re-weights the debiased one"
    # train_lff.py: the weight of a sample from the current batch's losses (no moving average, no class max)
    paper = {"method_args": {"q": 0.7, "ema": 0.0, "class_max": False}}
    search_space = {
        "method_args.q": Uniform(0.3, 0.9),  # GCE's q (Zhang & Sabuncu 2018: 0.7; 1 is MAE-like, 0 is CE)
        "method_args.ema": Uniform(0.0, 0.9),  # none (the original) up to the LfF paper's 0.7 and beyond
    }

    @dataclass
    class Settings:
        q: float = 0.7
        ema: float = 0.0  # moving average of each sample's loss across epochs (0: the batch's losses)
        class_max: bool = False  # divide each sample's averaged loss by the largest of its class
        biased_init: str = "auto"  # auto | independent | copy

    def __init__(self, settings, ctx):
        super().__init__(settings, ctx)
        n = int(np.sum(ctx.class_counts))
        self.avg_loss = torch.zeros(2, n, device=ctx.device)  # rows: biased, debiased
        self.seen = torch.zeros(n, dtype=torch.bool, device=ctx.device)
        self.labels = torch.zeros(n, dtype=torch.long, device=ctx.device)
        self.biased: GLTModel | None = None

    def build_model(self, backbone) -> GLTModel:
        model = super().build_model(backbone)
        self.biased = copy.deepcopy(model)
        if resolve_init(self.settings.biased_init, backbone) == "independent":
            reinitialize(self.biased, backbone)
        return model

    def extra_modules(self) -> nn.ModuleDict:
        return nn.ModuleDict({"biased": self.biased})

    @torch.no_grad()
    def sample_weights(self, loss_b, loss_d, labels, index) -> torch.Tensor:
        """Update the per-sample loss averages of `index` and return l_b / (l_b + l_d) for the batch."""
        m = self.settings.ema
        if m == 0 and not self.settings.class_max:  # the original: the current batch's losses only
            return loss_b / (loss_b + loss_d + 1e-8)
        # in a multi-process run every rank updates the averages of the whole global batch, so all
        # ranks keep the same averages (and class maxima) as a single process would
        rows = dist.all_gather_rows(torch.stack([index, labels], 1))
        losses = dist.all_gather_rows(torch.stack([loss_b, loss_d], 1))
        all_index, all_labels = rows[:, 0], rows[:, 1]
        old = self.avg_loss[:, all_index]
        # the first time a sample is seen its average is its loss (as in the LfF code)
        keep = m * self.seen[all_index].float()
        self.avg_loss[:, all_index] = keep * old + (1 - keep) * losses.T
        self.seen[all_index] = True
        self.labels[all_index] = all_labels
        lb, ld = self.avg_loss[:, index]
        if self.settings.class_max:
            c = self.ctx.num_classes
            peak = torch.zeros(2, c, device=lb.device)
            seen = self.seen.nonzero().squeeze(1)
            for row in range(2):
                peak[row].scatter_reduce_(0, self.labels[seen], self.avg_loss[row, seen], "amax")
            lb = lb / peak[0, labels].clamp_min(1e-8)
            ld = ld / peak[1, labels].clamp_min(1e-8)
        return lb / (lb + ld + 1e-8)

    def training_step(self, model, images, labels, index):
        out = self.forward(model, images)
        logits_b = self.biased(images)
        ce_d = F.cross_entropy(out.logits, labels, reduction="none")
        ce_b = F.cross_entropy(logits_b, labels, reduction="none")
        index = torch.as_tensor(index, device=labels.device)
        w = self.sample_weights(ce_b.detach(), ce_d.detach(), labels, index)
        loss_b = generalized_ce(logits_b, labels, self.settings.q).mean()
        loss_d = (ce_d * w).mean()
        return loss_b + loss_d, out, {"lff_biased_loss": float(loss_b.detach()), "lff_weight": float(w.mean())}

    def state_dict(self):
        return {"avg_loss": self.avg_loss.cpu(), "seen": self.seen.cpu(), "labels": self.labels.cpu()}

    def load_state_dict(self, state):
        for key in ("avg_loss", "seen", "labels"):
            getattr(self, key).copy_(state[key].to(self.ctx.device))
