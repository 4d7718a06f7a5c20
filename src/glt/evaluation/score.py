"""Score what any model predicted for a benchmark split (metrics: docs/metrics.md): predicted classes (CSV
id,prediction) or class scores (.npy N x C in split order, or CSV id,0,...,C-1). Every problem with the inputs
is a one-line GLTError naming the file and the key or value."""

from __future__ import annotations

import os

import numpy as np

from glt.benchmark import Benchmark, parse_split_name
from glt.benchmark.directory import MANIFEST, split_file
from glt.errors import GLTError
from glt.evaluation.calibration import probability_problem
from glt.evaluation.metadata import SplitMetadata
from glt.evaluation.metrics import evaluate_split
from glt.evaluation.prediction_files import check_score_matrix, file_kind, read_predictions, read_scores
from glt.evaluation.score_metrics import SCORE_KINDS, detect_kind, evaluate_scores

__all__ = ["check_attributes", "read_predictions", "score_predictions", "score_scores"]


def check_attributes(bench: Benchmark, split: str, attribute: np.ndarray, attributes: np.ndarray | None) -> int:
    """The manifest's num_attributes (a positive integer) with every attribute of the split inside
    0..num_attributes-1, and attribute_names matching the multilabel vector; else a GLTError."""
    manifest = bench.root / MANIFEST
    k = bench.manifest.num_attributes
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise GLTError(f"manifest {manifest}: 'num_attributes' must be a positive integer, not {k!r}")
    if len(attribute):
        lo, hi = int(attribute.min()), int(attribute.max())
        if lo < 0 or hi >= k:
            bad = lo if lo < 0 else hi
            raise GLTError(f"split table {split_file(bench.root, split)}: attribute {bad} is outside 0..{k - 1} "
                           f"(the manifest's num_attributes is {k})")
    names = bench.manifest.attribute_names
    if attributes is not None and names:
        if not isinstance(names, list) or len(names) != attributes.shape[1]:
            count = len(names) if isinstance(names, list) else repr(names)
            raise GLTError(f"manifest {manifest}: 'attribute_names' has {count} names, the attribute vectors of "
                           f"{split_file(bench.root, split)} have {attributes.shape[1]} entries")
    return k


def _load(benchmark: str | os.PathLike | Benchmark, split: str):
    """The benchmark, the split's ids and its checked metadata."""
    bench = benchmark if isinstance(benchmark, Benchmark) else Benchmark(benchmark)
    parse_split_name(split)
    table = bench.split(split)
    k = check_attributes(bench, split, table.attribute, table.attributes)
    meta = SplitMetadata.from_table(table, bench.num_classes, k, bench.manifest.attribute_names or None)
    return bench, table.id, meta


def score_predictions(benchmark: str | os.PathLike | Benchmark, split: str, predictions: str | os.PathLike,
                      scores: str | None = None) -> dict:
    """The metrics of evaluate_split (keys: glt.evaluation.METRIC_DEFINITIONS) for a predictions file: a CSV
    id,prediction, or a scores file (then as score_scores, `scores` the kind: 'logits', 'probs' or None to
    detect it)."""
    bench, ids, meta = _load(benchmark, split)
    if file_kind(predictions, meta.num_classes) == "scores":
        return _score_matrix(bench, split, meta, read_scores(predictions, ids, meta.num_classes), scores or "auto",
                             predictions, ids)
    if scores is not None:
        raise GLTError(f"predictions file {predictions}: holds predicted classes (id,prediction); --scores {scores} "
                       f"needs a scores file (.npy, or CSV id,0,...,{meta.num_classes - 1})")
    pred = read_predictions(predictions, ids, meta.num_classes)
    try:
        return evaluate_split(meta, pred)
    except ValueError as e:  # every input was checked above: a safety net, still one line
        raise GLTError(f"cannot score {predictions} on {split_file(bench.root, split)}: {e}") from None


def score_scores(benchmark: str | os.PathLike | Benchmark, split: str, scores: str | os.PathLike | np.ndarray,
                 kind: str = "auto") -> dict:
    """The metrics of evaluate_split for class scores, plus top5_accuracy, expected_calibration_error,
    score_kind and top_k. `scores`: a file (.npy, rows in split order; or CSV id,0,...,C-1) or an array of
    shape (split rows, classes); `kind`: 'logits', 'probs' or 'auto' (probabilities when every row is
    non-negative and sums to 1 within 1e-3)."""
    bench, ids, meta = _load(benchmark, split)
    if isinstance(scores, np.ndarray):
        return _score_matrix(bench, split, meta, check_score_matrix("array", scores, ids, meta.num_classes), kind,
                             "the scores array", ids)
    return _score_matrix(bench, split, meta, read_scores(scores, ids, meta.num_classes), kind, scores, ids)


def _score_matrix(bench, split, meta, matrix: np.ndarray, kind: str, where, ids: np.ndarray) -> dict:
    if kind not in (*SCORE_KINDS, "auto"):
        raise GLTError(f"unknown scores kind '{kind}' for {where}; known: auto, {', '.join(SCORE_KINDS)}")
    kind = detect_kind(matrix) if kind == "auto" else kind
    problem = probability_problem(matrix) if kind == "probs" else None
    if problem:
        row, why = problem
        raise GLTError(f"scores file {where}: the row of id {ids[row]} (row {row}) {why}; probabilities must be "
                       f"non-negative and sum to 1 within 1e-3 (scores that are logits: --scores logits)")
    try:
        return evaluate_scores(meta, matrix, kind)
    except ValueError as e:  # every input was checked above: a safety net, still one line
        raise GLTError(f"cannot score {where} on {split_file(bench.root, split)}: {e}") from None
