"""Accuracy, macro precision and F1 with the breakdowns of SPEC 3, vectorised with bincount.

Precision follows the original definition: (1 / #classes present in the labels) * sum_c TP_c / P_c, where
P_c counts predictions of c over the *whole* split, also when the sum runs over a subset (a frequency
group, an attribute): so a subset's precision says how trustworthy the predictions of its classes are.
"""

from __future__ import annotations

import numpy as np

from glt.benchmark.manifest import FREQUENCY_GROUPS


def _f1(acc: float, prec: float) -> float:
    return 0.0 if acc + prec == 0 else 2 * acc * prec / (acc + prec)


def _metrics(acc: float, prec: float, n: int) -> dict[str, float]:
    if n == 0:
        return {"accuracy": float("nan"), "precision": float("nan"), "f1": float("nan"), "num_samples": 0}
    return {"accuracy": acc, "precision": prec, "f1": _f1(acc, prec), "num_samples": int(n)}


def grouped_metrics(
    labels: np.ndarray,
    correct: np.ndarray,
    pred_count: np.ndarray,
    num_classes: int,
    groups: np.ndarray,
    num_groups: int,
) -> list[dict[str, float]]:
    """Metrics of every group g (samples with groups == g) in one pass: a (group, class) bincount.
    `pred_count` counts predictions over the whole split (SPEC 3's subset rule for precision)."""
    key = groups.astype(np.int64) * num_classes + labels
    size = num_groups * num_classes
    count = np.bincount(key, minlength=size).reshape(num_groups, num_classes)
    # weights instead of key[correct]: a boolean gather over the split costs more than the bincount
    tp = np.bincount(key, weights=correct, minlength=size).reshape(num_groups, num_classes)
    ratio = np.divide(1.0, pred_count, out=np.zeros(num_classes), where=pred_count > 0)
    present = count > 0
    n = count.sum(1)
    n_present = present.sum(1)
    acc = tp.sum(1) / np.maximum(n, 1)
    prec = (tp * ratio).sum(1) / np.maximum(n_present, 1)
    return [_metrics(float(acc[g]), float(prec[g]), int(n[g])) for g in range(num_groups)]


def group_metrics(
    labels: np.ndarray, correct: np.ndarray, pred_count: np.ndarray, num_classes: int
) -> dict[str, float]:
    """Metrics of one subset: `labels`/`correct` restricted to it, `pred_count` over the whole split."""
    return grouped_metrics(labels, correct, pred_count, num_classes, np.zeros((), dtype=np.int64), 1)[0]


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
    """All metrics of one split. Returns fractions in [0, 1]:

    accuracy, precision, f1, num_samples; by_frequency {many, medium, few}; by_attribute {"0", "1", ...};
    worst_attribute_accuracy; per_class {count, accuracy, precision}; for multilabel benchmarks
    (`attributes` given) per_attribute_accuracy over the binary attribute vector.
    """
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape:
        raise ValueError("labels and predictions differ in length")
    pred_count = np.bincount(predictions, minlength=num_classes)[:num_classes]
    correct = labels == predictions
    out = group_metrics(labels, correct, pred_count, num_classes)

    if frequency is not None:
        frequency = np.asarray(frequency)
        per_group = grouped_metrics(labels, correct, pred_count, num_classes, frequency, len(FREQUENCY_GROUPS))
        out["by_frequency"] = dict(zip(FREQUENCY_GROUPS, per_group))
    if attribute is not None:
        attribute = np.asarray(attribute)
        k = int(num_attributes if num_attributes is not None else attribute.max() + 1)
        per_attr = grouped_metrics(labels, correct, pred_count, num_classes, attribute, k)
        by_attr = {str(a): m for a, m in enumerate(per_attr)}
        out["by_attribute"] = by_attr
        accs = [m["accuracy"] for m in by_attr.values() if m["num_samples"] > 0]
        out["worst_attribute_accuracy"] = float(min(accs)) if accs else float("nan")

    count = np.bincount(labels, minlength=num_classes)
    tp = np.bincount(labels, weights=correct, minlength=num_classes)
    out["per_class"] = {
        "count": count.tolist(),
        "accuracy": np.divide(tp, count, out=np.full(num_classes, np.nan), where=count > 0).tolist(),
        "precision": np.divide(tp, pred_count, out=np.zeros(num_classes), where=pred_count > 0).tolist(),
    }
    if attributes is not None:
        attributes = np.asarray(attributes, dtype=np.float64)
        has = attributes.sum(0)
        hits = correct.astype(np.float64) @ attributes
        acc = np.divide(hits, has, out=np.full(len(has), np.nan), where=has > 0)
        names = attribute_names or [str(i) for i in range(len(has))]
        out["per_attribute_accuracy"] = {n: (None if np.isnan(a) else float(a)) for n, a in zip(names, acc)}
        out["per_attribute_count"] = {n: int(c) for n, c in zip(names, has)}
    return out
