"""Loss pieces shared by several methods (LDAM, RIDE and their IFL / IRM forms): label-distribution-aware
margins, effective-number class weights and the margin cross-entropy. Kept here, not in one method's file,
so a method never imports another method's module for them."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def ldam_margins(class_counts: np.ndarray, max_margin: float = 0.5) -> np.ndarray:
    """Per-class margins m_c proportional to n_c^(-1/4), scaled so that the largest is `max_margin`."""
    m = np.maximum(np.asarray(class_counts, dtype=np.float64), 1) ** -0.25
    return m * (max_margin / m.max())


def class_balanced_weights(class_counts: np.ndarray, beta: float) -> np.ndarray:
    """Class-balanced weights (Cui et al. 2019): (1 - beta) / (1 - beta^n_c), normalised to sum to #classes."""
    n = np.maximum(np.asarray(class_counts, dtype=np.float64), 1)
    w = (1 - beta) / (1 - beta**n)
    return w * (len(w) / w.sum())


def margin_cross_entropy(logits, labels, margins, scale: float, weight=None) -> torch.Tensor:
    """Cross-entropy after lowering each sample's true-class logit by scale * m_y (logits = scale * cos)."""
    shift = torch.zeros_like(logits).scatter_(1, labels[:, None], (scale * margins[labels])[:, None].to(logits.dtype))
    return F.cross_entropy(logits - shift, labels, weight=weight)
