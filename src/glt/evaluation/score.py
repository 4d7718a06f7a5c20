"""Score a predictions file made by any model against a benchmark split (metrics: docs/metrics.md).
Every problem with the inputs is a one-line GLTError naming the file and the key or value."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from glt.benchmark import Benchmark, parse_split_name
from glt.benchmark.directory import MANIFEST, split_file
from glt.errors import GLTError
from glt.evaluation.metrics import evaluate


def read_predictions(path: str | os.PathLike, ids: np.ndarray, num_classes: int) -> np.ndarray:
    """Read a CSV `id,prediction` and return the predictions in the order of `ids` (the split's rows).
    Missing, duplicate or unknown ids and predictions that are not class indices 0..num_classes-1 are
    errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise GLTError(f"predictions file not found: {path}")
    try:
        # both as text: pandas would otherwise read True/False as booleans (= classes 1/0)
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise GLTError(f"malformed predictions file {path}: {(str(e).splitlines() or [type(e).__name__])[0]}") from None
    except OSError as e:
        raise GLTError(f"cannot read predictions file {path}: {e.strerror or e}") from None
    if list(df.columns) != ["id", "prediction"]:
        raise GLTError(f"predictions file {path}: expected the columns id,prediction, found {','.join(map(str, df.columns))}")
    pred = pd.to_numeric(df["prediction"], errors="coerce").astype(np.float64)
    # not a number, not whole, or too large for an int64 (a class index is far smaller anyway)
    bad = pred.isna() | (pred != pred.round()) | (pred.abs() > 2.0**62)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise GLTError(f"predictions file {path}: prediction '{df['prediction'].iloc[row]}' of id {df['id'].iloc[row]} is not a class index")
    pred = pred.to_numpy().astype(np.int64)
    out_of_range = (pred < 0) | (pred >= num_classes)
    if out_of_range.any():
        row = int(np.flatnonzero(out_of_range)[0])
        raise GLTError(f"predictions file {path}: prediction {pred[row]} of id {df['id'].iloc[row]} is outside 0..{num_classes - 1}")
    dup = df["id"].duplicated()
    if dup.any():
        raise GLTError(f"predictions file {path}: id {df['id'][dup].iloc[0]} appears more than once")
    position = pd.Index(df["id"]).get_indexer(pd.Index(ids.astype(str)))
    if (position < 0).any():
        missing = int((position < 0).sum())
        raise GLTError(f"predictions file {path}: {missing} ids of the split have no prediction, e.g. {ids[position < 0][0]}")
    if len(df) > len(ids):
        unknown = pd.Index(df["id"]).difference(pd.Index(ids.astype(str)))
        raise GLTError(f"predictions file {path}: {len(unknown)} ids are not in the split, e.g. {unknown[0]}")
    return pred[position]


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


def score_predictions(benchmark: str | os.PathLike | Benchmark, split: str, predictions: str | os.PathLike) -> dict:
    """The metrics of `evaluate` (keys: glt.evaluation.metrics.METRIC_DEFINITIONS) for a predictions CSV."""
    bench = benchmark if isinstance(benchmark, Benchmark) else Benchmark(benchmark)
    parse_split_name(split)
    table = bench.split(split)
    k = check_attributes(bench, split, table.attribute, table.attributes)
    pred = read_predictions(predictions, table.id, bench.num_classes)
    m = bench.manifest
    try:
        return evaluate(
            table.label, pred, bench.num_classes, table.frequency, table.attribute, k,
            table.attributes, m.attribute_names or None,
        )
    except ValueError as e:  # every input was checked above: a safety net, still one line
        raise GLTError(f"cannot score {predictions} on {split_file(bench.root, split)}: {e}") from None
