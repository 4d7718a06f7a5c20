"""Metrics against a slow, literal implementation of docs/metrics.md."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glt.evaluation import evaluate


def slow_metrics(labels, preds, subset, num_classes, count_in_subset=False):
    """docs/metrics.md literally: accuracy over the subset; precision = mean over classes present in the
    subset's labels of TP_c (in the subset) / P_c, P_c = predictions of c over the whole split (frequency
    groups) or, with count_in_subset, inside the subset (attribute groups)."""
    sub = [i for i in range(len(labels)) if subset[i]]
    if not sub:
        return None
    acc = sum(labels[i] == preds[i] for i in sub) / len(sub)
    present = sorted({labels[i] for i in sub})
    counted = sub if count_in_subset else range(len(preds))
    total = 0.0
    for c in present:
        p_c = sum(1 for i in counted if preds[i] == c)
        tp = sum(1 for i in sub if labels[i] == c and preds[i] == c)
        total += tp / p_c if p_c else 0.0
    prec = total / len(present)
    f1 = 0.0 if acc + prec == 0 else 2 * acc * prec / (acc + prec)
    return acc, prec, f1


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_reference(seed):
    rng = np.random.default_rng(seed)
    n, c = 300, 12
    labels = rng.integers(0, c - 2, n)  # classes 10, 11 never in the labels ...
    preds = np.where(rng.random(n) < 0.6, labels, rng.integers(0, c, n))  # ... but may be predicted
    preds[preds == 3] = 4  # class 3 is never predicted: contributes 0
    freq = rng.integers(0, 3, n)
    attr = rng.integers(0, 4, n)
    out = evaluate(labels, preds, c, freq, attr, 4)
    ref = slow_metrics(labels, preds, [True] * n, c)
    assert (out["accuracy"], out["precision"], out["f1"]) == pytest.approx(ref, abs=1e-12)
    for g, name in enumerate(("many", "medium", "few")):
        ref = slow_metrics(labels, preds, freq == g, c)
        m = out["by_frequency"][name]
        assert (m["accuracy"], m["precision"], m["f1"]) == pytest.approx(ref, abs=1e-12)
    accs = []
    for a in range(4):
        ref = slow_metrics(labels, preds, attr == a, c, count_in_subset=True)
        m = out["by_attribute"][str(a)]
        assert (m["accuracy"], m["precision"], m["f1"]) == pytest.approx(ref, abs=1e-12)
        split_counts = slow_metrics(labels, preds, attr == a, c)[1]
        assert m["precision_split_counts"] == pytest.approx(split_counts, abs=1e-12)
        assert m["precision_split_counts"] != pytest.approx(m["precision"])  # the two rules differ here
        accs.append(ref[0])
    assert out["worst_attribute_accuracy"] == pytest.approx(min(accs))
    for k in range(c):
        mask = labels == k
        if mask.any():
            assert out["per_class"]["accuracy"][k] == pytest.approx((preds[mask] == k).mean())
        else:
            assert math.isnan(out["per_class"]["accuracy"][k])


def test_empty_group_and_multilabel_attributes():
    labels = np.array([0, 1, 1, 2])
    preds = np.array([0, 1, 2, 2])
    vec = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]], dtype=np.uint8)
    out = evaluate(labels, preds, 3, np.zeros(4, int), np.array([0, 0, 1, 1]), 3, vec, ["a", "b", "c"])
    assert out["by_frequency"]["few"]["num_samples"] == 0 and math.isnan(out["by_frequency"]["few"]["accuracy"])
    assert out["by_attribute"]["2"]["num_samples"] == 0
    # worst attribute ignores the empty attribute group
    assert out["worst_attribute_accuracy"] == pytest.approx(0.5)
    assert out["per_attribute_accuracy"] == {"a": 1.0, "b": 0.5, "c": None}
    assert out["per_attribute_count"] == {"a": 2, "b": 2, "c": 0}


def test_perfect_and_constant_predictions():
    labels = np.array([0, 0, 1, 2])
    out = evaluate(labels, labels, 3)
    assert out["accuracy"] == out["precision"] == out["f1"] == 1.0
    out = evaluate(labels, np.zeros(4, int), 3)
    assert out["accuracy"] == 0.5
    assert out["precision"] == pytest.approx((2 / 4) / 3)
