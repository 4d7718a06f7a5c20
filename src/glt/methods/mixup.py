from __future__ import annotations

from dataclasses import dataclass

import torch

from glt.methods.base import METHODS, Method
from glt.search.space import LogUniform


@METHODS.register("mixup")
class Mixup(Method):
    """Mixup (Zhang et al. 2018): each batch is mixed with a shuffled copy of itself,
    x = lam * x_i + (1 - lam) * x_j with lam ~ Beta(alpha, alpha), and the loss is
    lam * L(y_i) + (1 - lam) * L(y_j). `Output.extra["mix"] = (y_i, y_j, lam)` tells wrappers (IFL's
    center loss) how the labels were mixed."""

    needs_images = "it mixes input images"

    name = "mixup"
    description = "mixup augmentation with cross-entropy"
    # Zhang et al. 2018: alpha 0.1-0.4 on ImageNet, 1 on CIFAR; larger alphas underfit
    search_space = {"method_args.alpha": LogUniform(0.1, 2.0)}

    @dataclass
    class Settings:
        alpha: float = 1.0  # Beta(alpha, alpha); 0 turns mixing off

    def training_step(self, model, images, labels, index):
        a = self.settings.alpha
        # torch's generator: saved in checkpoints, so a resumed run mixes exactly as an uninterrupted one
        lam = float(torch.distributions.Beta(a, a).sample()) if a > 0 else 1.0
        perm = torch.randperm(len(images), device=images.device)
        out = self.forward(model, lam * images + (1 - lam) * images[perm])
        other = labels[perm]
        out.extra["mix"] = (labels, other, lam)
        loss = lam * self.loss(out, labels) + (1 - lam) * self.loss(out, other)
        return loss, out, {"mixup_lambda": lam}
