"""Classifier heads by name. A head maps (B, D) features to (B, C) logits.

Every head declares `compares_by_angle`: whether its logits depend on the features' directions only
(normalised features), so a feature-level loss should compare features by angle too (IFL's center loss
`auto` picks the cosine center loss for such a head, the Euclidean one otherwise)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from glt.errors import GLTError, unknown_name
from glt.registry import Registry

HEADS: Registry[Callable[..., nn.Module]] = Registry("head")


@HEADS.register("linear")
class LinearHead(nn.Linear):
    """A linear classifier. Without a bias by default, as the original's linear heads
    (models/ClassifierFC.py, ClassifierLA.py, ClassifierLWS.py: `nn.Linear(feat_dim, num_classes,
    bias=False)`, nn.Linear's own initialisation; docs/fidelity.md, section A); `bias=True` adds one."""

    compares_by_angle = False

    def __init__(self, in_features: int, num_classes: int, bias: bool = False):
        super().__init__(in_features, num_classes, bias=bias)


@HEADS.register("cosine")
class CosineHead(nn.Module):
    """Normalised linear classifier: `scale * cos(feature, class weight)` (LDAM, RIDE and TADE use scale 30,
    so a softmax over the logits is not flat)."""

    compares_by_angle = True

    def __init__(self, in_features: int, num_classes: int, scale: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        self.scale = scale
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Unit-norm class vectors with uniform(-1, 1) directions, as the originals' NormedLinear (LDAM-DRW, RIDE,
        TADE and the GLT study: `uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)`). The norm is not cosmetic: the
        logits ignore it, so SGD turns a row by about lr / ||w||^2 per step and the initial norm sets the head's
        effective learning rate (nn.Linear's init, rows of norm ~0.58, starts it ~3x faster than the originals)."""
        with torch.no_grad():
            self.weight.uniform_(-1, 1)
            self.weight.div_(self.weight.norm(dim=1, keepdim=True).clamp_min(1e-12))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))


@HEADS.register("lws")
class LWSHead(LinearHead):
    """Learnable weight scaling (Kang et al. 2020): a linear head whose logits are multiplied by one
    learnable scale per class. The scales start at 1 and stay fixed while the linear weights learn;
    `learn_scales(True)` freezes the weights and lets only the scales learn (LWS's second stage). As the
    original's models/ClassifierLWS.py: no bias, scales initialised to 1."""

    def __init__(self, in_features: int, num_classes: int, bias: bool = False):
        super().__init__(in_features, num_classes, bias=bias)
        self.scales = nn.Parameter(torch.ones(num_classes))
        self.learn_scales(False)

    def learn_scales(self, on: bool) -> None:
        for p in (self.weight, self.bias):
            if p is not None:
                p.requires_grad_(not on)
        self.scales.requires_grad_(on)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * self.scales


@HEADS.register("causal_norm")
class CausalNormHead(nn.Module):
    """Deconfound-TDE's multi-head cosine classifier (Tang et al. 2020). Features and class weights are cut
    into `num_heads` equal chunks; each feature chunk is L2-normalised, each weight chunk divided by
    (its norm + gamma), and the logit is `tau / num_heads` times the sum of the chunks' dot products.
    `counterfactual` removes the direct effect of a feature direction at test time (TDE)."""

    # each chunk is normalised on its own: the angle of the whole feature is not what the logits measure
    compares_by_angle = False

    def __init__(self, in_features: int, num_classes: int, num_heads: int = 2, tau: float = 16.0,
                 gamma: float = 1 / 32):
        super().__init__()
        if num_heads < 1 or in_features % num_heads:
            raise GLTError(f"causal_norm head: feature size {in_features} is not divisible by num_heads={num_heads}")
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        self.num_heads = num_heads
        self.scale = tau / num_heads
        self.gamma = gamma
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight.shape[1])
        nn.init.uniform_(self.weight, -bound, bound)

    def _chunks(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], self.num_heads, -1)

    def normed_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, heads, D / heads): every chunk of unit norm."""
        return F.normalize(self._chunks(x), dim=2)

    def normed_weight(self) -> torch.Tensor:
        w = self._chunks(self.weight)
        return (w / (w.norm(dim=2, keepdim=True) + self.gamma)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.normed_features(x).flatten(1) @ self.normed_weight().t()

    def counterfactual(self, x: torch.Tensor, direction: torch.Tensor, alpha: float) -> torch.Tensor:
        """TDE logits: in every chunk remove `alpha * cos(x, d) * d` (d = the chunk of the normalised moving
        average `direction` of training features) before the classifier."""
        nx = self.normed_features(x)
        nd = self.normed_features(direction.reshape(1, -1))
        cos = (nx * nd).sum(2, keepdim=True)
        return self.scale * (nx - alpha * cos * nd).flatten(1) @ self.normed_weight().t()


@HEADS.register("multi_expert")
class MultiExpertHead(nn.Module):
    """One head per expert, each over its own slice of the feature ((B, E * D) from E experts' backbones):
    `expert_logits` gives (B, E, C); the head's output is the experts' mean (RIDE, TADE).
    `compares_by_angle`: None, as its expert heads; a bool overrides it (TADE, see glt.methods.tade)."""

    def __init__(self, in_features: int, num_classes: int, num_experts: int = 3, expert_head: str = "cosine",
                 compares_by_angle: bool | None = None, **kwargs):
        super().__init__()
        if num_experts < 1 or in_features % num_experts:
            raise GLTError(f"multi_expert head: feature size {in_features} is not divisible by {num_experts} experts")
        self.experts = nn.ModuleList(
            create_head(expert_head, in_features // num_experts, num_classes, **kwargs) for _ in range(num_experts)
        )
        if compares_by_angle is None:
            compares_by_angle = all(getattr(e, "compares_by_angle", False) for e in self.experts)
        self.compares_by_angle = bool(compares_by_angle)

    def expert_logits(self, x: torch.Tensor) -> torch.Tensor:
        chunks = x.chunk(len(self.experts), dim=1)
        return torch.stack([head(c) for head, c in zip(self.experts, chunks)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expert_logits(x).mean(1)


def create_head(name: str, in_features: int, num_classes: int, **kwargs) -> nn.Module:
    if name not in HEADS:
        raise unknown_name("head", name, HEADS.names())
    return HEADS.get(name)(in_features, num_classes, **kwargs)
