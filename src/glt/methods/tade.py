from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from glt.methods.base import METHODS, Output
from glt.methods.experts import MultiExpert
from glt.search.space import Uniform


def inverse_prior(prior: torch.Tensor) -> torch.Tensor:
    """The prior's values handed out in reverse rank order: the largest class gets the smallest value."""
    values, order = torch.sort(prior, stable=True)
    out = torch.empty_like(prior)
    out[order] = values.flip(0)
    return out


@METHODS.register("tade")
class TADE(MultiExpert):
    """TADE (Zhang et al. 2022): 3 skill-diverse experts on shared early layers, each with a cosine classifier
    (s 30): expert 1 learns the training (long-tailed) distribution with cross-entropy, expert 2 the balanced
    one with Balanced Softmax (logits + log prior), expert 3 an inversely long-tailed one
    (logits + log prior - tau * log inverse_prior, tau 2). The prediction averages the experts
    (the test-time self-supervised aggregation is not used, as in the study: train_tade.py, test_baseline.py).
    The experts are the original's reduced-width RIDE backbone (models/ResNet_RIDE.py, `reduce_dimension: True`;
    see `MultiExpert`)."""

    name = "tade"
    description = "TADE: 3 experts for the long-tailed, balanced and inverse class distributions"
    # the original's center_tade compares features by Euclidean distance (CenterLoss) although the experts are
    # cosine classifiers: declared on the head, so ifl+tade keeps the original's center loss
    experts_compare_by_angle = False
    paper = {"method_args": {"tau": 2.0, "expert_width": 0.75}}
    search_space = {
        "method_args.tau": Uniform(1.0, 3.0),  # Zhang et al. 2022's inverse-distribution lambda is 2
        "method_args.scale": Uniform(10.0, 64.0),  # as LDAM's
    }

    @dataclass
    class Settings:
        expert_stages: int = 2  # last backbone stages owned by each expert
        # channel width of the expert-owned stages: 0.75 = the original's reduce_dimension; 1.0 = full width
        expert_width: float = 0.75
        # full-width experts: auto (independent draws unless the backbone is pretrained) | independent | copy
        expert_init: str = "auto"
        scale: float = 30.0
        tau: float = 2.0

    def expert_shifts(self) -> torch.Tensor:
        """(3, C) additive logit shifts of the three expert losses."""
        log_prior = torch.log(self.ctx.prior + 1e-9)
        log_inverse = torch.log(inverse_prior(self.ctx.prior) + 1e-9)
        return torch.stack([torch.zeros_like(log_prior), log_prior, log_prior - self.settings.tau * log_inverse])

    def loss(self, out: Output, labels):
        shifted = out.extra["expert_logits"] + self.expert_shifts()[None]
        return sum(F.cross_entropy(logits, labels) for logits in shifted.unbind(1))
