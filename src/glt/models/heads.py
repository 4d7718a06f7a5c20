"""Classifier heads by name. A head maps (B, D) features to (B, C) logits."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from glt.errors import unknown_name
from glt.registry import Registry

HEADS: Registry[Callable[..., nn.Module]] = Registry("head")


@HEADS.register("linear")
class LinearHead(nn.Linear):
    def __init__(self, in_features: int, num_classes: int, bias: bool = True):
        super().__init__(in_features, num_classes, bias=bias)


def create_head(name: str, in_features: int, num_classes: int, **kwargs) -> nn.Module:
    if name not in HEADS:
        raise unknown_name("head", name, HEADS.names())
    return HEADS.get(name)(in_features, num_classes, **kwargs)


def head_weight(head: nn.Module) -> torch.Tensor:
    """The (C, D) weight of a linear-like head (for tau-norm and friends)."""
    return head.weight
