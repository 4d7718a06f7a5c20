"""Evaluation from class scores (docs/metrics.md, "Scores"): the arg-max predictions through evaluate_split,
plus top-k accuracy and the expected calibration error. numpy only."""

from __future__ import annotations

import numpy as np

from glt.errors import unknown_name
from glt.evaluation.calibration import (
    TOP_K, expected_calibration_error, looks_like_probabilities, probability_problem, softmax, top_k_accuracy,
)
from glt.evaluation.definitions import ordered
from glt.evaluation.metadata import SplitMetadata
from glt.evaluation.metrics import evaluate_split


def _probabilities(probs: np.ndarray) -> np.ndarray:
    problem = probability_problem(probs)
    if problem:
        row, why = problem
        raise ValueError(f"row {row} {why}: probabilities must be non-negative and sum to 1 within 1e-3")
    return probs


# scores kind -> its probabilities (the confidence of the calibration error)
SCORE_KINDS = {"logits": softmax, "probs": _probabilities}


def detect_kind(scores: np.ndarray) -> str:
    """'probs' when every entry lies in [0, 1] (the rows must then be probability vectors: non-negative,
    summing to 1 within 1e-3), else 'logits'."""
    return "probs" if looks_like_probabilities(scores) else "logits"


def evaluate_scores(meta: SplitMetadata, scores: np.ndarray, kind: str = "auto") -> dict:
    """evaluate_split of the arg-max predictions (the first class on ties) plus top5_accuracy (k = min(5, C)),
    expected_calibration_error (15 bins), score_kind and top_k. `scores`: (N, C), rows in split order; `kind`:
    'logits', 'probs' or 'auto' (detect_kind). Bad shapes, non-finite values, invalid probabilities raise
    ValueError."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(meta), meta.num_classes):
        raise ValueError(f"scores of shape {scores.shape}, expected ({len(meta)}, {meta.num_classes})")
    if not np.isfinite(scores).all():
        raise ValueError("scores hold NaN or infinite values")
    kind = detect_kind(scores) if kind == "auto" else kind  # detected probabilities are checked too
    if kind not in SCORE_KINDS:
        raise unknown_name("scores kind", kind, [*SCORE_KINDS, "auto"])
    probs = SCORE_KINDS[kind](scores)
    predictions = scores.argmax(axis=1)
    out = evaluate_split(meta, predictions)
    k = min(TOP_K, meta.num_classes)
    out.update({
        "top5_accuracy": top_k_accuracy(scores, meta.label, k),
        "expected_calibration_error": expected_calibration_error(probs, meta.label, predictions),
        "score_kind": kind,
        "top_k": k,
    })
    return ordered(out)
