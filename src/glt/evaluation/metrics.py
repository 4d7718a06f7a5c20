"""Accuracy, macro precision and F1 with their frequency / attribute breakdowns, vectorised with bincount.

Definitions (with the original code each follows): docs/metrics.md. In short, precision of a set of samples
is (1 / #classes present in its labels) * sum_c TP_c / P_c, and the breakdowns differ in where P_c (the
predictions of class c) is counted, as in the original's `acc_by_splits.print_score` (test_baseline.py):

- frequency groups: P_c over the *whole split* (the original's `premask=False` path);
- attribute groups: P_c *inside the group* (the original's `premask=True` path); the whole-split variant is
  reported beside it as `precision_split_counts`.
"""

from __future__ import annotations

import numpy as np

from glt.benchmark.manifest import FREQUENCY_GROUPS

# What every key of `evaluate`'s result means (printed by `glt score`; docs/metrics.md says more).
METRIC_DEFINITIONS: dict[str, str] = {
    "source": "docs/metrics.md; original: KaihuaTang/Generalized-Long-Tailed-Benchmarks.pytorch",
    "accuracy": "correct predictions / samples (top-1; the original's 'Recall/AC', utils/general_utils.py: "
                "calculate_recall)",
    "precision": "mean over the classes present in the labels of TP_c / P_c, P_c = predictions of class c "
                 "in the split; a class never predicted counts 0 (utils/general_utils.py: calculate_precision)",
    "f1": "2 * accuracy * precision / (accuracy + precision); 0 when both are 0 (the original divides by zero)",
    "num_samples": "samples in the split or group",
    "by_frequency": "per frequency group of the class (many/medium/few): accuracy over the group's samples; "
                    "precision sums TP_c / P_c over the group's samples with P_c counted over the WHOLE split "
                    "and divides by the classes present in the group (test_baseline.py: print_score, "
                    "premask=False)",
    "by_attribute": "per attribute value (or attribute group): accuracy over the group's samples; precision "
                    "with P_c counted INSIDE the group, divided by the classes present in the group "
                    "(test_baseline.py: print_score, premask=True); f1 from these two",
    "by_attribute.precision_split_counts": "glt's second number: the group's precision with P_c counted over "
                                           "the WHOLE split, as by_frequency does (not in the original)",
    "worst_attribute_accuracy": "lowest accuracy over the non-empty attribute groups (glt; not in the original)",
    "per_class": "count (samples per class), accuracy (recall of the class; null if absent), precision "
                 "(TP_c / P_c over the split; 0 if never predicted) (glt; not in the original)",
    "per_attribute_accuracy": "multilabel benchmarks: accuracy over the samples having each binary attribute "
                              "(glt; not in the original)",
    "empty groups": "a group without samples has num_samples 0 and null metrics (the original skips it)",
}


def _f1(acc: float, prec: float) -> float:
    return 0.0 if acc + prec == 0 else 2 * acc * prec / (acc + prec)


def _metrics(acc: float, prec: float, n: int) -> dict[str, float]:
    if n == 0:
        return {"accuracy": float("nan"), "precision": float("nan"), "f1": float("nan"), "num_samples": 0}
    return {"accuracy": acc, "precision": prec, "f1": _f1(acc, prec), "num_samples": int(n)}


def _check_range(name: str, values: np.ndarray, size: int) -> None:
    if values.size and (values.min() < 0 or values.max() >= size):
        bad = int(values.min()) if values.min() < 0 else int(values.max())
        raise ValueError(f"{name} value {bad} is outside 0..{size - 1}")


def grouped_metrics(
    labels: np.ndarray,
    correct: np.ndarray,
    pred_count: np.ndarray,
    num_classes: int,
    groups: np.ndarray,
    num_groups: int,
) -> list[dict[str, float]]:
    """Metrics of every group g (samples with groups == g) in one pass: a (group, class) bincount.

    `pred_count` is P_c of the precision: shape (num_classes,) for counts over the whole split (the
    frequency rule) or (num_groups, num_classes) for counts inside each group (the attribute rule)."""
    key = groups.astype(np.int64) * num_classes + labels
    size = num_groups * num_classes
    count = np.bincount(key, minlength=size).reshape(num_groups, num_classes)
    # weights instead of key[correct]: a boolean gather over the split costs more than the bincount
    tp = np.bincount(key, weights=correct, minlength=size).reshape(num_groups, num_classes)
    pred_count = np.broadcast_to(np.asarray(pred_count, dtype=np.float64), (num_groups, num_classes))
    ratio = np.divide(1.0, pred_count, out=np.zeros((num_groups, num_classes)), where=pred_count > 0)
    present = count > 0
    n = count.sum(1)
    n_present = present.sum(1)
    acc = tp.sum(1) / np.maximum(n, 1)
    prec = (tp * ratio).sum(1) / np.maximum(n_present, 1)
    return [_metrics(float(acc[g]), float(prec[g]), int(n[g])) for g in range(num_groups)]


def group_predictions(predictions: np.ndarray, num_classes: int, groups: np.ndarray, num_groups: int) -> np.ndarray:
    """(num_groups, num_classes): how often each class is predicted inside each group."""
    key = groups.astype(np.int64) * num_classes + predictions
    return np.bincount(key, minlength=num_groups * num_classes).reshape(num_groups, num_classes)


def group_metrics(
    labels: np.ndarray, correct: np.ndarray, pred_count: np.ndarray, num_classes: int
) -> dict[str, float]:
    """Metrics of one set of samples: `labels`/`correct` restricted to it, `pred_count` (num_classes,) the
    P_c to divide by (over the same set, or over a larger split)."""
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
    """All metrics of one split (definitions: METRIC_DEFINITIONS, docs/metrics.md). Returns fractions in [0, 1]:

    accuracy, precision, f1, num_samples; by_frequency {many, medium, few} (precision with predictions
    counted over the split); by_attribute {"0", "1", ...} (precision with predictions counted inside the
    group, plus precision_split_counts); worst_attribute_accuracy; per_class {count, accuracy, precision};
    for multilabel benchmarks (`attributes` given) per_attribute_accuracy over the binary attribute vector.
    Values outside their range (labels, predictions, groups) raise ValueError.
    """
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape:
        raise ValueError("labels and predictions differ in length")
    _check_range("label", labels, num_classes)
    _check_range("prediction", predictions, num_classes)
    pred_count = np.bincount(predictions, minlength=num_classes)
    correct = labels == predictions
    out = group_metrics(labels, correct, pred_count, num_classes)

    if frequency is not None:
        frequency = np.asarray(frequency, dtype=np.int64)
        _check_range("frequency group", frequency, len(FREQUENCY_GROUPS))
        per_group = grouped_metrics(labels, correct, pred_count, num_classes, frequency, len(FREQUENCY_GROUPS))
        out["by_frequency"] = dict(zip(FREQUENCY_GROUPS, per_group))
    if attribute is not None:
        attribute = np.asarray(attribute, dtype=np.int64)
        k = int(num_attributes) if num_attributes is not None else int(attribute.max(initial=-1)) + 1
        _check_range("attribute", attribute, k)
        inside = group_predictions(predictions, num_classes, attribute, k)
        per_attr = grouped_metrics(labels, correct, inside, num_classes, attribute, k)
        per_attr_split = grouped_metrics(labels, correct, pred_count, num_classes, attribute, k)
        by_attr = {}
        for a, (m, ms) in enumerate(zip(per_attr, per_attr_split)):
            by_attr[str(a)] = {**m, "precision_split_counts": ms["precision"]}
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
