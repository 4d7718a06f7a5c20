"""Metrics of class scores (docs/metrics.md, "Scores"): softmax of logits, checks of probabilities, top-k
accuracy and the expected calibration error. numpy only."""

from __future__ import annotations

import numpy as np

PROB_TOLERANCE = 1e-3  # rows of probabilities sum to 1 within this
ECE_BINS = 15
TOP_K = 5
CHUNK = 8192  # rows at a time: the (rows, classes) comparisons of top-k stay small


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)  # exp of the largest is 1: no overflow
    np.exp(z, out=z)  # in place: one N x C copy of the scores, not three
    z /= z.sum(axis=1, keepdims=True)
    return z


def looks_like_probabilities(scores: np.ndarray) -> bool:
    """Every entry in [0, 1] (within PROB_TOLERANCE): read as probabilities unless told otherwise."""
    scores = np.asarray(scores)
    return bool(scores.size == 0 or (scores.min() >= 0 and scores.max() <= 1 + PROB_TOLERANCE))


def probability_problem(probs: np.ndarray) -> tuple[int, str] | None:
    """The first row that is not a probability vector (negative entry, or sum off 1 by more than
    PROB_TOLERANCE) and why, or None."""
    probs = np.asarray(probs, dtype=np.float64)
    negative = (probs < 0).any(axis=1)
    off = np.abs(probs.sum(axis=1) - 1) > PROB_TOLERANCE
    bad = np.flatnonzero(negative | off)
    if not bad.size:
        return None
    row = int(bad[0])
    if negative[row]:
        return row, f"has the negative entry {float(probs[row].min())!r}"
    return row, f"sums to {float(probs[row].sum())!r}"


def label_rank(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """0-based rank of each label among its row's scores, classes ordered by score (highest first), equal
    scores by class index: rank 0 is exactly the arg-max prediction (np.argmax takes the first maximum)."""
    scores = np.asarray(scores)
    labels = np.asarray(labels, dtype=np.int64)
    ranks = np.empty(len(labels), dtype=np.int64)
    classes = np.arange(scores.shape[1])
    for lo in range(0, len(labels), CHUNK):
        s, y = scores[lo:lo + CHUNK], labels[lo:lo + CHUNK]
        own = s[np.arange(len(y)), y][:, None]
        ahead = (s > own) | ((s == own) & (classes < y[:, None]))
        ranks[lo:lo + CHUNK] = ahead.sum(axis=1)
    return ranks


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of samples whose label ranks among the k highest scores (label_rank < k)."""
    if not len(labels):
        return float("nan")
    return float((label_rank(scores, labels) < k).mean())


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, predictions: np.ndarray | None = None,
                               bins: int = ECE_BINS) -> float:
    """sum over equal-width bins (b/bins, (b+1)/bins] of the confidence (largest probability; a confidence of
    0 falls in the first bin) of (bin size / N) * |accuracy in the bin - mean confidence in the bin|. The
    predictions default to the arg-max of `probs` (pass those of the logits they came from: the same ties)."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if not n:
        return float("nan")
    confidence = probs.max(axis=1)
    predictions = probs.argmax(axis=1) if predictions is None else np.asarray(predictions)
    correct = (predictions == labels).astype(np.float64)
    edges = np.arange(bins + 1) / bins
    b = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    gap = np.abs(np.bincount(b, weights=correct, minlength=bins) - np.bincount(b, weights=confidence, minlength=bins))
    # |sum correct - sum conf| / N per bin = (size / N) * |acc - conf|
    return float(gap.sum() / n)
