"""Accuracy, macro precision and F1 of a split with every breakdown, each one a grouper's grouped computation
(glt.evaluation.grouped). Definitions (with the original code each follows): docs/metrics.md. In short,
precision of a set of samples is (1 / #classes present in its labels) * sum_c TP_c / P_c, and the breakdowns
differ in where P_c (the predictions of class c) is counted, as in the original's `acc_by_splits.print_score`
(test_baseline.py):

- frequency groups: P_c over the *whole split* (the original's `premask=False` path);
- attribute groups: P_c *inside the group* (the original's `premask=True` path); the whole-split variant is
  reported beside it as `precision_split_counts`.
"""

from __future__ import annotations

import numpy as np

from glt.evaluation.definitions import METRIC_DEFINITIONS, ordered
from glt.evaluation.grouped import GroupCounts, group_counts
from glt.evaluation.groupers import BY_ATTRIBUTE, BY_CLASS, BY_CLASS_ATTRIBUTE, BY_FREQUENCY, WHOLE_SPLIT
from glt.evaluation.metadata import SplitMetadata, check_range

__all__ = ["METRIC_DEFINITIONS", "evaluate", "evaluate_split"]


def _worst(acc: np.ndarray) -> float:
    """Lowest accuracy over the non-empty groups (NaN marks an empty one); NaN when all are empty."""
    acc = acc[~np.isnan(acc)]
    return float(acc.min()) if acc.size else float("nan")


def evaluate_split(meta: SplitMetadata, predictions: np.ndarray) -> dict:
    """All metrics of one split (definitions: METRIC_DEFINITIONS, docs/metrics.md), fractions in [0, 1]:

    accuracy, precision, f1, worst_class_accuracy, num_samples, per_class {count, accuracy, precision}; with
    frequency groups by_frequency {many, medium, few} (predictions counted over the split); with attributes
    by_attribute {"0", "1", ...} (predictions counted inside the group, plus precision_split_counts),
    worst_attribute_accuracy, worst_group_accuracy and num_groups over class x attribute, per_class_attribute;
    with attribute vectors per_attribute_accuracy / per_attribute_count. A prediction outside 0..C-1 raises
    ValueError."""
    predictions = np.asarray(predictions, dtype=np.int64)
    if meta.label.shape != predictions.shape:
        raise ValueError("labels and predictions differ in length")
    check_range("prediction", predictions, meta.num_classes)
    shared = {"correct": meta.label == predictions,
              "pred_split": np.bincount(predictions, minlength=meta.num_classes)}
    out = group_counts(meta, predictions, WHOLE_SPLIT, inside=False, **shared).metrics("split")[0]

    per_class = group_counts(meta, predictions, BY_CLASS, **shared)
    class_acc = per_class.accuracy()
    out["worst_class_accuracy"] = _worst(class_acc)
    if meta.frequency is not None:
        by_freq = group_counts(meta, predictions, BY_FREQUENCY, inside=False, **shared)
        out["by_frequency"] = dict(zip(by_freq.names, by_freq.metrics("split")))
    if meta.attribute is not None:
        by_attr = group_counts(meta, predictions, BY_ATTRIBUTE, **shared)
        split_counts = by_attr.precision("split")
        out["by_attribute"] = {name: {**m, "precision_split_counts": float(split_counts[a])}
                               for a, (name, m) in enumerate(zip(by_attr.names, by_attr.metrics("group")))}
        out["worst_attribute_accuracy"] = _worst(by_attr.accuracy())
        cells = group_counts(meta, predictions, BY_CLASS_ATTRIBUTE, **shared)
        cell_acc = cells.accuracy()
        out["worst_group_accuracy"] = _worst(cell_acc)
        out["num_groups"] = int((cells.num_samples > 0).sum())
        shape = (meta.num_classes, meta.num_attributes)  # label-major group ids: reshape gives [class][attribute]
        out["per_class_attribute"] = {"count": cells.num_samples.reshape(shape).tolist(),
                                      "accuracy": cell_acc.reshape(shape).tolist()}
    out["per_class"] = _per_class(per_class, class_acc)
    if meta.attributes is not None:
        out.update(_per_binary_attribute(meta, shared["correct"]))
    return ordered(out)


def _per_class(table: GroupCounts, acc: np.ndarray) -> dict:
    pred = table.pred_split[table.cls[:, 0]]
    hits = table.hits[:, 0]
    return {
        "count": table.num_samples.tolist(),
        "accuracy": acc.tolist(),
        "precision": np.divide(hits, pred, out=np.zeros(len(hits)), where=pred > 0).tolist(),
    }


def _per_binary_attribute(meta: SplitMetadata, correct: np.ndarray) -> dict:
    """Binary attribute vectors overlap (a sample has several attributes): not a grouper's partition, one
    matrix product instead."""
    attributes = np.asarray(meta.attributes, dtype=np.float64)
    has = attributes.sum(0)
    hits = correct.astype(np.float64) @ attributes
    acc = np.divide(hits, has, out=np.full(len(has), np.nan), where=has > 0)
    names = meta.attribute_names or [str(i) for i in range(len(has))]
    return {
        "per_attribute_accuracy": {n: (None if np.isnan(a) else float(a)) for n, a in zip(names, acc)},
        "per_attribute_count": {n: int(c) for n, c in zip(names, has)},
    }


def evaluate(
    labels: np.ndarray,
    predictions: np.ndarray,
    num_classes: int,
    frequency: np.ndarray | None = None,
    attribute: np.ndarray | None = None,
    num_attributes: int | None = None,
    attributes: np.ndarray | None = None,
    attribute_names: list[str] | None = None,
) -> dict:
    """evaluate_split(SplitMetadata(labels, num_classes, ...), predictions): the columns as separate arrays.
    Values outside their range (labels, predictions, groups) raise ValueError."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != np.shape(predictions):
        raise ValueError("labels and predictions differ in length")
    meta = SplitMetadata(labels, num_classes, frequency, attribute, num_attributes, attributes, attribute_names)
    return evaluate_split(meta, predictions)

