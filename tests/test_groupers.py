"""Groupers, SplitMetadata and the headline numbers built on them (worst class / attribute / group accuracy),
against slow loops written from docs/metrics.md."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from glt.benchmark import SplitTable
from glt.errors import GLTError
from glt.evaluation import Grouper, SplitMetadata, evaluate, evaluate_split
from glt.evaluation.grouped import group_counts


def case(seed, n=300, c=7, k=4):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c - 1, n)  # class c-1 absent from the labels
    preds = np.where(rng.random(n) < 0.5, labels, rng.integers(0, c, n))
    attr = rng.choice(k, n, p=[0.6, 0.25, 0.15, 0.0][:k] if k == 4 else None)  # attribute 3 empty
    attr[labels == 2] = 0  # class 2 only in attribute 0: its other class x attribute groups are empty
    freq = rng.integers(0, 3, n)
    return labels, preds, freq, attr, c, k


def slow_group_accuracy(labels, preds, keys):
    """{group key: accuracy} over the groups that have samples, by a plain loop."""
    hits, count = {}, {}
    for y, p, key in zip(labels, preds, keys):
        count[key] = count.get(key, 0) + 1
        hits[key] = hits.get(key, 0) + (y == p)
    return {key: hits[key] / count[key] for key in count}


@pytest.mark.parametrize("seed", range(5))
def test_worst_numbers_match_a_loop(seed):
    labels, preds, freq, attr, c, k = case(seed)
    out = evaluate(labels, preds, c, freq, attr, k)
    per_class = slow_group_accuracy(labels, preds, labels.tolist())
    per_attr = slow_group_accuracy(labels, preds, attr.tolist())
    cells = slow_group_accuracy(labels, preds, list(zip(labels.tolist(), attr.tolist())))
    assert out["worst_class_accuracy"] == pytest.approx(min(per_class.values()), abs=1e-12)
    assert out["worst_attribute_accuracy"] == pytest.approx(min(per_attr.values()), abs=1e-12)
    assert out["worst_group_accuracy"] == pytest.approx(min(cells.values()), abs=1e-12)
    assert out["num_groups"] == len(cells) < c * k  # empty groups are not counted
    for y in range(c):
        for a in range(k):
            got = out["per_class_attribute"]["accuracy"][y][a]
            assert out["per_class_attribute"]["count"][y][a] == sum(1 for i in range(len(labels))
                                                                  if labels[i] == y and attr[i] == a)
            if (y, a) in cells:
                assert got == pytest.approx(cells[(y, a)], abs=1e-12)
            else:
                assert math.isnan(got)


def test_worst_group_can_be_below_worst_class_and_attribute():
    """Class 0 fails only on attribute 1, class 1 only on attribute 0: every class and every attribute is
    half right, the worst class x attribute group is 0."""
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    attr = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    preds = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    out = evaluate(labels, preds, 2, None, attr, 2)
    assert out["worst_class_accuracy"] == 0.5 and out["worst_attribute_accuracy"] == 0.5
    assert out["worst_group_accuracy"] == 0.0 and out["num_groups"] == 4


def test_worst_class_without_attributes_and_absent_classes():
    out = evaluate(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 0]), 5)
    assert out["worst_class_accuracy"] == 0.5  # classes 2..4 absent: not a 0 or a NaN
    assert "worst_group_accuracy" not in out and "num_groups" not in out


@pytest.mark.parametrize("by", [("label",), ("attribute",), ("frequency",), ("label", "attribute"),
                                ("attribute", "frequency", "label"), ()])
def test_grouper_ids_names_and_counts(by):
    labels, preds, freq, attr, c, k = case(1)
    meta = SplitMetadata(labels, c, freq, attr, k)
    g = Grouper(by)
    columns = {"label": labels, "attribute": attr, "frequency": freq}
    sizes = {"label": c, "attribute": k, "frequency": 3}
    assert g.n_groups(meta) == math.prod(sizes[f] for f in by)
    ids = g.group_ids(meta)
    names = g.group_names(meta)
    assert len(names) == len(set(names)) == g.n_groups(meta)
    freq_names = ["many", "medium", "few"]
    for i in range(len(labels)):
        values = [int(columns[f][i]) for f in by]
        expected = 0
        for f, v in zip(by, values):  # mixed radix, first field most significant
            expected = expected * sizes[f] + v
        assert ids[i] == expected
        shown = [freq_names[v] if f == "frequency" else str(v) for f, v in zip(by, values)]
        want = shown[0] if len(by) == 1 else ",".join(f"{f}={s}" for f, s in zip(by, shown)) if by else "all"
        assert names[ids[i]] == want
    assert (g.field_values(meta)[ids] == np.array([[columns[f][i] for f in by] for i in range(len(labels))])
            .reshape(len(labels), len(by))).all()
    # the grouped computation: samples, hits and P_c inside the group of every group, against a loop
    t = group_counts(meta, preds, g)
    for grp in range(g.n_groups(meta)):
        members = [i for i in range(len(labels)) if ids[i] == grp]
        assert t.num_samples[grp] == len(members)
        assert t.hits[grp].sum() == sum(labels[i] == preds[i] for i in members)
        for w, cls in enumerate(t.cls[grp]):
            assert t.count[grp, w] == sum(labels[i] == cls for i in members)
            assert t.predicted[grp, w] == sum(preds[i] == cls for i in members)


def test_grouper_rejects_unknown_and_missing_fields():
    with pytest.raises(GLTError, match="unknown grouping field 'atribute'; did you mean attribute"):
        Grouper(("atribute",))
    with pytest.raises(ValueError, match="tuple of field names"):
        Grouper("label")
    meta = SplitMetadata(np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="no attribute column"):
        Grouper(("attribute",)).group_ids(meta)


def test_metadata_from_a_split_table_reads_what_it_has():
    labels = np.array([0, 1, 2, 1])
    table = SplitTable(np.array(["a", "b", "c", "d"]), np.array(["p"] * 4), labels, [0, 0, 1, 2], [0, 1, 1, 0])
    meta = SplitMetadata.from_table(table, 3, 2, ["x", "y"])
    assert meta.attributes is None and meta.attribute_names is None and meta.num_attributes == 2
    assert meta.frequency.tolist() == [0, 0, 1, 2]
    vec = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], np.uint8)
    table.attributes = vec
    meta = SplitMetadata.from_table(table, 3, 2, ["x", "y"])
    assert meta.attribute_names == ["x", "y"] and (meta.attributes == vec).all()
    bare = SplitMetadata.from_table(SimpleNamespace(label=labels), 3)  # a table with labels only
    assert bare.frequency is None and bare.attribute is None and bare.attributes is None
    out = evaluate_split(bare, labels)
    assert out["accuracy"] == 1.0 and "by_frequency" not in out and "by_attribute" not in out
    with pytest.raises(ValueError, match="attribute value 2"):
        SplitMetadata(labels, 3, attribute=np.array([0, 2, 0, 0]), num_attributes=2)
    with pytest.raises(ValueError, match="label value 3"):
        SplitMetadata(np.array([3]), 3)


@pytest.mark.parametrize("seed", range(3))
def test_adapter_equals_evaluate_split(seed):
    labels, preds, freq, attr, c, k = case(seed)
    vec = (np.random.default_rng(seed).random((len(labels), 3)) < 0.4).astype(np.uint8)
    a = evaluate(labels, preds, c, freq, attr, k, vec, ["p", "q", "r"])
    b = evaluate_split(SplitMetadata(labels, c, freq, attr, k, vec, ["p", "q", "r"]), preds)
    assert list(a) == list(b)
    assert repr(a) == repr(b)  # same numbers, NaN included


def test_multilabel_class_x_attribute_uses_the_attribute_column():
    """On multilabel benchmarks a sample has several binary attributes but one `attribute` (its attribute
    group): class x attribute groups are formed from that column, the vector only feeds
    per_attribute_accuracy."""
    labels = np.array([0, 0, 1, 1])
    preds = np.array([0, 1, 1, 1])
    group = np.array([0, 1, 0, 0])
    vec = np.array([[1, 1], [1, 1], [0, 1], [0, 1]], np.uint8)  # both samples of class 0 have attribute 0
    out = evaluate(labels, preds, 2, None, group, 2, vec, ["a", "b"])
    cells = slow_group_accuracy(labels, preds, list(zip(labels, group)))
    assert out["num_groups"] == len(cells) == 3
    assert out["worst_group_accuracy"] == min(cells.values()) == 0.0  # (class 0, group 1)
    assert out["per_attribute_accuracy"] == {"a": 0.5, "b": 0.75}
