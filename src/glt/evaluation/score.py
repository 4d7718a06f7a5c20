"""Score a predictions file made by any model against a benchmark split."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from glt.benchmark import Benchmark, parse_split_name
from glt.errors import GLTError
from glt.evaluation.metrics import evaluate


def read_predictions(path: str | os.PathLike, ids: np.ndarray, num_classes: int) -> np.ndarray:
    """Read a CSV `id,prediction` and return the predictions in the order of `ids` (the split's rows).
    Missing, duplicate or unknown ids and labels outside the class range are errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise GLTError(f"predictions file not found: {path}")
    try:
        df = pd.read_csv(path, dtype={"id": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise GLTError(f"malformed predictions file {path}: {str(e).splitlines()[0]}") from None
    if list(df.columns) != ["id", "prediction"]:
        raise GLTError(f"predictions file {path}: expected the columns id,prediction, found {','.join(map(str, df.columns))}")
    pred = pd.to_numeric(df["prediction"], errors="coerce")
    bad = pred.isna() | (pred != pred.round())
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


def score_predictions(benchmark: str | os.PathLike | Benchmark, split: str, predictions: str | os.PathLike) -> dict:
    bench = benchmark if isinstance(benchmark, Benchmark) else Benchmark(benchmark)
    parse_split_name(split)
    table = bench.split(split)
    pred = read_predictions(predictions, table.id, bench.num_classes)
    m = bench.manifest
    return evaluate(
        table.label, pred, bench.num_classes, table.frequency, table.attribute, m.num_attributes,
        table.attributes, m.attribute_names or None,
    )
