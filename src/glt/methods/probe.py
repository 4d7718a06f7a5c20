"""What a method builds, asked before (or without) the run's model: its head, built on a tiny backbone.

IFL's `center_loss=auto`, `glt config --original` and decoupling's `init_from` check ask a method's head what
it declares (glt.models.heads, e.g. `compares_by_angle`); the probe builds a copy of the method on a
two-channel small_cnn, so the method itself and the run's random number stream are left alone."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from glt.methods.base import Context, Method
from glt.models import create_backbone


def probe_head(method: Method) -> nn.Module:
    """The head `method` builds (on a throwaway copy of it and a tiny backbone)."""
    probe = copy.deepcopy(method)
    with torch.random.fork_rng(devices=[]):  # the probe's initial weights leave the run's RNG alone
        return probe.build_model(create_backbone("small_cnn", width=2)).head


def probe_context(num_classes: int = 2, epochs: int = 1) -> Context:
    """A Context for building a method only to look at what it builds (no run behind it)."""
    labels = np.arange(2 * num_classes) % num_classes
    return Context(num_classes, np.bincount(labels, minlength=num_classes), epochs, batch_size=2, labels=labels)
