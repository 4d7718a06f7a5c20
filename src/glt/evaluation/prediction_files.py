"""Reading what a model predicted for a split (docs/metrics.md, "Scoring files"): a CSV `id,prediction` of
classes, or scores (logits or probabilities) as a `.npy` N x C array in split order or a CSV `id,0,...,C-1`.
Every problem is a one-line GLTError naming the file and the id, row or column."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from glt.errors import GLTError, first_line

LABEL_COLUMNS = ["id", "prediction"]


def _csv(path: Path, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise GLTError(f"malformed predictions file {path}: {first_line(e)}") from None
    except OSError as e:
        raise GLTError(f"cannot read predictions file {path}: {e.strerror or e}") from None


def _existing(path: str | os.PathLike, what: str = "predictions file") -> Path:
    path = Path(path)
    if not path.is_file():
        raise GLTError(f"{what} not found: {path}")
    return path


def csv_kind(path: str | os.PathLike, num_classes: int) -> str:
    """'classes' for `id,prediction`, 'scores' for `id,0,1,...,C-1`; any other header is an error."""
    path = _existing(path)
    columns = [str(c) for c in _csv(path, nrows=0, dtype=str).columns]
    if columns == LABEL_COLUMNS:
        return "classes"
    expected = ["id", *map(str, range(num_classes))]
    if columns == expected:
        return "scores"
    found = ",".join(columns)
    if columns[:1] == ["id"] and len(columns) > 1 and all(c.isdigit() for c in columns[1:]):
        raise GLTError(f"predictions file {path}: {len(columns) - 1} class columns {found[3:]}, the benchmark has "
                       f"{num_classes} classes: expected the columns id,0,...,{num_classes - 1}")
    raise GLTError(f"predictions file {path}: expected the columns id,prediction (classes) or id,0,...,"
                   f"{num_classes - 1} (scores), found {found}")


def align_ids(path: Path, file_ids: pd.Series, ids: np.ndarray) -> np.ndarray:
    """Positions in the file of the split's ids, in split order; duplicate, missing or unknown ids are errors."""
    dup = file_ids.duplicated()
    if dup.any():
        raise GLTError(f"predictions file {path}: id {file_ids[dup].iloc[0]} appears more than once")
    position = pd.Index(file_ids).get_indexer(pd.Index(ids.astype(str)))
    if (position < 0).any():
        missing = int((position < 0).sum())
        raise GLTError(f"predictions file {path}: {missing} ids of the split have no prediction, e.g. {ids[position < 0][0]}")
    if len(file_ids) > len(ids):
        unknown = pd.Index(file_ids).difference(pd.Index(ids.astype(str)))
        raise GLTError(f"predictions file {path}: {len(unknown)} ids are not in the split, e.g. {unknown[0]}")
    return position


def read_predictions(path: str | os.PathLike, ids: np.ndarray, num_classes: int) -> np.ndarray:
    """Read a CSV `id,prediction` and return the predictions in the order of `ids` (the split's rows).
    Missing, duplicate or unknown ids and predictions that are not class indices 0..num_classes-1 are
    errors naming the file."""
    path = _existing(path)
    # both as text: pandas would otherwise read True/False as booleans (= classes 1/0)
    df = _csv(path, dtype=str, keep_default_na=False)
    if list(df.columns) != LABEL_COLUMNS:
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
    return pred[align_ids(path, df["id"], ids)]


def _check_finite(path, scores: np.ndarray, row_ids) -> np.ndarray:
    scores = scores.astype(np.float64, copy=False)
    finite = np.isfinite(scores)
    if not finite.all():
        row, col = (int(v[0]) for v in np.nonzero(~finite))
        raise GLTError(f"scores file {path}: score {scores[row, col]} of id {row_ids[row]} (row {row}), class {col} "
                       f"is not finite")
    return scores


def check_score_matrix(path, scores: np.ndarray, ids: np.ndarray, num_classes: int) -> np.ndarray:
    """An N x C real matrix (rows in split order) with finite entries, as float64; else a GLTError."""
    if scores.dtype.kind not in "fiu":
        raise GLTError(f"scores file {path}: values of type {scores.dtype}, expected real numbers (float)")
    if scores.shape != (len(ids), num_classes):
        raise GLTError(f"scores file {path}: shape {'x'.join(map(str, scores.shape)) or 'scalar'}, expected "
                       f"{len(ids)}x{num_classes} (one row per sample of the split, in split order; one column per class)")
    return _check_finite(path, scores, ids)


def read_scores_npy(path: str | os.PathLike, ids: np.ndarray, num_classes: int) -> np.ndarray:
    """A `.npy` array of shape (split rows, classes), rows in the split's order."""
    path = _existing(path, "scores file")
    try:
        scores = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as e:
        raise GLTError(f"malformed scores file {path}: {first_line(e)}") from None
    except OSError as e:
        raise GLTError(f"cannot read scores file {path}: {e.strerror or first_line(e)}") from None
    if not isinstance(scores, np.ndarray):  # an .npz archive
        raise GLTError(f"malformed scores file {path}: not a single .npy array")
    return check_score_matrix(path, scores, ids, num_classes)


def read_scores_csv(path: str | os.PathLike, ids: np.ndarray, num_classes: int) -> np.ndarray:
    """A CSV `id,0,1,...,C-1` (any row order), returned in the order of `ids`."""
    path = _existing(path, "scores file")
    if csv_kind(path, num_classes) != "scores":
        raise GLTError(f"scores file {path}: holds predicted classes (id,prediction), not scores")
    # ids as text and never NA (an id 'NA' is an id); scores parsed by pandas, checked below
    df = _csv(path, dtype={"id": str}, keep_default_na=False)
    values = df.iloc[:, 1:]
    for col in values.columns:
        if len(df) and values[col].dtype.kind not in "fiu":
            number = pd.to_numeric(values[col].astype(str), errors="coerce")
            row = int(np.flatnonzero(number.isna().to_numpy())[0])
            raise GLTError(f"scores file {path}: score '{values[col].iloc[row]}' of id {df['id'].iloc[row]}, class "
                           f"{col} is not a number")
    scores = _check_finite(path, values.to_numpy(dtype=np.float64) if len(df) else np.zeros((0, num_classes)),
                           df["id"].to_numpy())
    return scores[align_ids(path, df["id"], ids)]


# how a scores file is read, by its suffix; anything else is a CSV
SCORE_READERS = {".npy": read_scores_npy}


def read_scores(path: str | os.PathLike, ids: np.ndarray, num_classes: int) -> np.ndarray:
    return SCORE_READERS.get(Path(path).suffix.lower(), read_scores_csv)(path, ids, num_classes)


def file_kind(path: str | os.PathLike, num_classes: int) -> str:
    """'classes' or 'scores': `.npy` files hold scores, a CSV says by its header."""
    return "scores" if Path(path).suffix.lower() in SCORE_READERS else csv_kind(path, num_classes)
