"""The one grouped computation behind every breakdown (docs/metrics.md): for a grouper, bincounts of samples,
hits and predictions per (group, class) cell, and the accuracy / precision / F1 of every group from them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glt.evaluation.groupers import Grouper
from glt.evaluation.metadata import SplitMetadata


@dataclass
class GroupCounts:
    """Cell (g, w) holds the samples of group g whose label is cls[g, w]. All arrays are (n_groups, width):
    width = num_classes, or 1 when the grouper includes the label (each group then holds one class)."""

    grouper: Grouper
    meta: SplitMetadata
    cls: np.ndarray  # class of each cell
    count: np.ndarray  # samples
    hits: np.ndarray  # correct predictions (float64)
    predicted: np.ndarray | None  # predictions of class cls[g, w] among the samples of group g (None: not counted)
    pred_split: np.ndarray  # (num_classes,): predictions of each class over the whole split

    @property
    def names(self) -> list[str]:
        return self.grouper.group_names(self.meta)

    @property
    def num_samples(self) -> np.ndarray:
        return self.count.sum(1)

    def accuracy(self) -> np.ndarray:
        """(n_groups,): hits / samples; NaN for an empty group."""
        n = self.num_samples
        acc = self.hits.sum(1) / np.maximum(n, 1)
        return np.where(n > 0, acc, np.nan)

    def precision(self, counted: str) -> np.ndarray:
        """(n_groups,): mean over the classes present in the group of TP_c / P_c, with P_c counted inside the
        group (counted="group", the attribute rule) or over the whole split ("split", the frequency rule); NaN
        for an empty group."""
        pred = COUNTED[counted](self)
        return np.where(self.num_samples > 0, precision(self.hits, self.count, pred), np.nan)

    def metrics(self, counted: str) -> list[dict[str, float]]:
        """accuracy, precision, f1, num_samples of every group (null metrics for an empty group)."""
        acc, prec, n = self.accuracy(), self.precision(counted), self.num_samples
        return [group_dict(float(acc[g]), float(prec[g]), int(n[g])) for g in range(len(n))]


# where the P_c of a group's precision is counted
COUNTED = {
    "group": lambda t: t.predicted if t.predicted is not None else _not_counted(),
    "split": lambda t: t.pred_split[t.cls],
}


def _not_counted():
    raise ValueError("the predictions inside each group were not counted (group_counts(..., inside=False))")


def precision(hits: np.ndarray, count: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Rows of (cell) tables -> macro precision per row; a class never predicted contributes 0."""
    pred = np.broadcast_to(np.asarray(pred, dtype=np.float64), hits.shape)
    ratio = np.divide(1.0, pred, out=np.zeros(hits.shape), where=pred > 0)
    n_present = (count > 0).sum(1)
    return (hits * ratio).sum(1) / np.maximum(n_present, 1)


def f1(acc: float, prec: float) -> float:
    return 0.0 if acc + prec == 0 else 2 * acc * prec / (acc + prec)


def group_dict(acc: float, prec: float, n: int) -> dict[str, float]:
    if n == 0:
        return {"accuracy": float("nan"), "precision": float("nan"), "f1": float("nan"), "num_samples": 0}
    return {"accuracy": acc, "precision": prec, "f1": f1(acc, prec), "num_samples": int(n)}


def group_counts(
    meta: SplitMetadata,
    predictions: np.ndarray,
    grouper: Grouper,
    correct: np.ndarray | None = None,
    pred_split: np.ndarray | None = None,
    inside: bool = True,
) -> GroupCounts:
    """The cell tables of `grouper` on `meta` (`correct` and `pred_split` may be passed to share them between
    groupers: label == prediction, and bincount(predictions)). inside=False skips counting the predictions
    inside each group (a bincount over the split) for a caller that only uses the whole-split rule."""
    c = meta.num_classes
    groups, n_groups = grouper.group_ids(meta), grouper.n_groups(meta)
    if correct is None:
        correct = meta.label == predictions
    if pred_split is None:
        pred_split = np.bincount(predictions, minlength=c)
    if "label" in grouper.by:
        count = np.bincount(groups, minlength=n_groups)[:, None]
        hits = np.bincount(groups, weights=correct, minlength=n_groups)[:, None]
        cls = grouper.field_values(meta)[:, [grouper.by.index("label")]]
        # the samples of a group all have its class: those predicted as that class are exactly the hits
        predicted = hits
    else:
        key = groups * c + meta.label
        size = n_groups * c
        count = np.bincount(key, minlength=size).reshape(n_groups, c)
        # weights instead of key[correct]: a boolean gather over the split costs more than the bincount
        hits = np.bincount(key, weights=correct, minlength=size).reshape(n_groups, c)
        predicted = np.bincount(groups * c + predictions, minlength=size).reshape(n_groups, c) if inside else None
        cls = np.broadcast_to(np.arange(c), (n_groups, c))
    return GroupCounts(grouper, meta, cls, count, hits, predicted, pred_split)
