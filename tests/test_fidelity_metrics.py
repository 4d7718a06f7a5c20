"""glt's metrics against the original code's (KaihuaTang/Generalized-Long-Tailed-Benchmarks.pytorch), and
`glt score` on bad input. The `orig_*` functions are plain-Python transcriptions of the original's
utils/general_utils.py (calculate_recall, calculate_precision, calculate_f1) and test_baseline.py
(acc_by_splits.print_score, run_test), written from reading that code, not from glt's."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from glt.cli.main import main
from glt.evaluation import evaluate

# ---- the original, transcribed ----------------------------------------------------------------------


def orig_recall(prediction, label, split_mask=None):
    """calculate_recall: the mean of (prediction == label), over the masked samples if a mask is given."""
    hits = [1.0 if p == l else 0.0 for p, l in zip(prediction, label)]
    if split_mask is not None:
        hits = [h for h, m in zip(hits, split_mask) if m]
    return sum(hits) / len(hits)


def orig_precision(prediction, label, num_class, split_mask=None):
    """calculate_precision: pred_count[i] counts the predictions of class i in `prediction`; every sample
    contributes correct / pred_count[its prediction]; the (masked) sum is divided by the number of
    distinct labels (of the masked samples)."""
    pred_count = [0] * num_class
    for i in range(num_class):
        for p in prediction:
            if p == i:
                pred_count[i] += 1
    per_sample = [(1.0 if p == l else 0.0) / pred_count[p] for p, l in zip(prediction, label)]
    if split_mask is not None:
        available_class = len({l for l, m in zip(label, split_mask) if m})
        return sum(v for v, m in zip(per_sample, split_mask) if m) / available_class
    return sum(per_sample) / len(set(label))


def orig_f1(recall, precision):
    """calculate_f1: no guard, Python floats (the original calls .item())."""
    return 2 * recall * precision / (recall + precision)


def orig_print_score(predictions, labels, num_class, split, premask=False):
    """acc_by_splits.print_score: for every group value s present in `split` (sorted), recall and precision
    either on the group's samples alone (premask=True: predictions[s_mask], labels[s_mask]) or on the whole
    split with split_mask (premask=False). Returns {s: (recall, precision)}."""
    out = {}
    for s in sorted(set(split)):
        s_mask = [g == s for g in split]
        if premask:
            sub_p = [p for p, m in zip(predictions, s_mask) if m]
            sub_l = [l for l, m in zip(labels, s_mask) if m]
            out[s] = (orig_recall(sub_p, sub_l), orig_precision(sub_p, sub_l, num_class))
        else:
            out[s] = (orig_recall(predictions, labels, split_mask=s_mask),
                      orig_precision(predictions, labels, num_class, split_mask=s_mask))
    return out


def orig_run_test(predictions, labels, frequency, attribute, num_class):
    """run_test on test_bbl (Test-GBL): frequency splits with premask=False, attribute splits with
    premask=True, then the overall recall, precision and F1."""
    r, p = orig_recall(predictions, labels), orig_precision(predictions, labels, num_class)
    return {
        "frequency": orig_print_score(predictions, labels, num_class, frequency),
        "attribute": orig_print_score(predictions, labels, num_class, attribute, premask=True),
        "overall": (r, p, orig_f1(r, p)),
    }


# ---- metrics ------------------------------------------------------------------------------------------


def random_case(seed, n=240, c=9, k=5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c - 1, n)  # class c-1 is never a label but may be predicted
    preds = np.where(rng.random(n) < 0.55, labels, rng.integers(0, c, n))
    preds[preds == 2] = 3  # class 2 is never predicted: contributes 0
    frequency = rng.integers(0, 3, n)
    attribute = rng.choice([0, 1, 2, 4], n, p=[0.55, 0.25, 0.15, 0.05])  # group 3 empty, groups unequal
    attribute[labels == 5] = 0  # a class absent from some groups
    return labels, preds, frequency, attribute, c, k


@pytest.mark.parametrize("seed", range(6))
def test_breakdowns_match_the_original(seed):
    labels, preds, frequency, attribute, c, k = random_case(seed)
    out = evaluate(labels, preds, c, frequency, attribute, k)
    ref = orig_run_test(preds.tolist(), labels.tolist(), frequency.tolist(), attribute.tolist(), c)

    assert (out["accuracy"], out["precision"], out["f1"]) == pytest.approx(ref["overall"], abs=1e-12)
    for g, name in enumerate(("many", "medium", "few")):
        m = out["by_frequency"][name]
        assert (m["accuracy"], m["precision"]) == pytest.approx(ref["frequency"][g], abs=1e-12)
    # the original loops over the attribute values present; glt lists every value, the absent one empty
    assert {int(a) for a, m in out["by_attribute"].items() if m["num_samples"]} == set(ref["attribute"])
    for a, (r, p) in ref["attribute"].items():
        m = out["by_attribute"][str(a)]
        assert (m["accuracy"], m["precision"]) == pytest.approx((r, p), abs=1e-12)
        assert m["f1"] == pytest.approx(orig_f1(r, p), abs=1e-12)
    assert out["by_attribute"]["3"]["num_samples"] == 0 and math.isnan(out["by_attribute"]["3"]["precision"])
    assert out["worst_attribute_accuracy"] == pytest.approx(min(r for r, _ in ref["attribute"].values()))


@pytest.mark.parametrize("seed", range(3))
def test_second_number_is_the_whole_split_rule(seed):
    """precision_split_counts is the original's premask=False rule applied to attribute groups."""
    labels, preds, frequency, attribute, c, k = random_case(seed)
    out = evaluate(labels, preds, c, frequency, attribute, k)
    whole = orig_print_score(preds.tolist(), labels.tolist(), c, attribute.tolist(), premask=False)
    inside = orig_print_score(preds.tolist(), labels.tolist(), c, attribute.tolist(), premask=True)
    for a in whole:
        m = out["by_attribute"][str(a)]
        assert m["precision_split_counts"] == pytest.approx(whole[a][1], abs=1e-12)
        assert whole[a][1] != pytest.approx(inside[a][1])  # on these cases the two rules do differ


def test_crafted_case_where_the_two_rules_differ():
    """Perfect predictions, two classes, two attribute groups holding one sample of each class: inside a
    group every prediction is right and is the only one of its class there, so the original's attribute
    precision is 1; counted over the split each class has 2 predictions, so the whole-split rule gives
    (1/2 + 1/2) / 2 = 0.5 for a perfect classifier."""
    labels = np.array([0, 0, 1, 1])
    attribute = np.array([0, 1, 0, 1])
    out = evaluate(labels, labels, 2, np.zeros(4, int), attribute, 2)
    ref = orig_print_score(labels.tolist(), labels.tolist(), 2, attribute.tolist(), premask=True)
    for a in ("0", "1"):
        assert out["by_attribute"][a]["precision"] == 1.0 == ref[int(a)][1]
        assert out["by_attribute"][a]["precision_split_counts"] == 0.5
        assert out["by_attribute"][a]["f1"] == 1.0
    # frequency groups keep the whole-split rule (premask=False): one group holding class 0 only
    freq = np.array([0, 0, 1, 1])
    out = evaluate(labels, np.array([0, 1, 1, 1]), 2, freq, attribute, 2)
    ref = orig_print_score([0, 1, 1, 1], labels.tolist(), 2, freq.tolist(), premask=False)
    assert out["by_frequency"]["many"]["precision"] == pytest.approx(ref[0][1]) == pytest.approx(1.0)
    assert out["by_frequency"]["medium"]["precision"] == pytest.approx(ref[1][1]) == pytest.approx(2 / 3)


def test_accuracy_is_sample_accuracy_not_mean_class_recall():
    """The original's 'Recall/AC' is the mean over samples (equal to mean class recall only on a
    class-balanced split): on an imbalanced one glt follows the samples too."""
    labels = [0, 0, 0, 1]
    preds = [0, 0, 0, 0]
    out = evaluate(np.array(labels), np.array(preds), 2)
    assert out["accuracy"] == orig_recall(preds, labels) == 0.75  # mean class recall would be 0.5


def test_f1_when_accuracy_and_precision_are_zero():
    """Deliberate difference: the original divides by zero (ZeroDivisionError on Python floats); glt's
    F1 is 0, the limit of 2rp/(r+p)."""
    labels, preds = [0, 1], [1, 0]
    r, p = orig_recall(preds, labels), orig_precision(preds, labels, 2)
    with pytest.raises(ZeroDivisionError):
        orig_f1(r, p)
    out = evaluate(np.array(labels), np.array(preds), 2, None, np.array([0, 1]), 2)
    assert out["f1"] == 0.0
    assert out["by_attribute"]["0"]["f1"] == 0.0


def test_out_of_range_values_raise_value_error():
    labels = np.array([0, 1])
    for kwargs, fragment in [
        ({"predictions": np.array([0, 2])}, "prediction value 2"),
        ({"predictions": np.array([-1, 0])}, "prediction value -1"),
        ({"attribute": np.array([0, 3])}, "attribute value 3"),
        ({"attribute": np.array([-1, 0])}, "attribute value -1"),
        ({"frequency": np.array([0, 3])}, "frequency group value 3"),
    ]:
        args = {"predictions": labels, "attribute": None, "frequency": None, **kwargs}
        with pytest.raises(ValueError, match=fragment):
            evaluate(labels, args["predictions"], 2, args["frequency"], args["attribute"], 3)


# ---- glt score ----------------------------------------------------------------------------------------


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err.strip()


def split_ids(bench):
    return pq.read_table(bench / "splits" / "glt" / "test_gbl.parquet").column("id").to_pylist()


def write_predictions(path, rows, header="id,prediction"):
    path.write_text(header + "\n" + "".join(f"{i},{p}\n" for i, p in rows))


def test_score_output_explains_its_definitions(capsys, tmp_path, tiny_benchmark):
    table = pq.read_table(tiny_benchmark / "splits" / "glt" / "test_gbl.parquet").to_pydict()
    rng = np.random.default_rng(0)
    preds = [int(p) if rng.random() < 0.4 else lab for p, lab in zip(rng.integers(0, 4, len(table["id"])), table["label"])]
    write_predictions(tmp_path / "p.csv", zip(table["id"], preds))
    code, out, err = run_cli(capsys, "score", "--benchmark", tiny_benchmark, "--split", "glt/test_gbl",
                             "--predictions", tmp_path / "p.csv", "--out", tmp_path / "s.json")
    assert code == 0, err
    res = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert res == json.loads((tmp_path / "s.json").read_text())
    for key in ("accuracy", "precision", "f1", "by_frequency", "by_attribute", "worst_attribute_accuracy", "per_class"):
        assert key in res and key in res["definitions"]
    assert "WHOLE split" in res["definitions"]["by_frequency"] and "premask=False" in res["definitions"]["by_frequency"]
    assert "INSIDE the group" in res["definitions"]["by_attribute"] and "premask=True" in res["definitions"]["by_attribute"]
    assert "by_attribute.precision_split_counts" in res["definitions"]
    ref = orig_print_score(preds, table["label"], 4, table["attribute"], premask=True)
    for a, (r, p) in ref.items():
        assert res["by_attribute"][str(a)]["precision"] == pytest.approx(p, abs=1e-12)
        assert res["by_attribute"][str(a)]["accuracy"] == pytest.approx(r, abs=1e-12)


def _set_column(bench, name, index, value):
    path = bench / "splits" / "glt" / "test_gbl.parquet"
    t = pq.read_table(path)
    col = t.column(name).to_pylist()
    col[index] = value
    pq.write_table(t.set_column(t.column_names.index(name), name, pa.array(col, t.schema.field(name).type)), path)


def _set_manifest(bench, key, value):
    path = bench / "manifest.json"
    m = json.loads(path.read_text())
    m[key] = value
    path.write_text(json.dumps(m))


# (how the benchmark is broken, fragments of the one-line error: the file, the key, the bad value and range)
BAD_BENCHMARK = [
    ("attribute 5", lambda b: _set_column(b, "attribute", 0, 5), ("test_gbl.parquet", "attribute 5", "0..2")),
    ("attribute -1", lambda b: _set_column(b, "attribute", 3, -1), ("test_gbl.parquet", "attribute -1", "0..2")),
    ("num_attributes 0", lambda b: _set_manifest(b, "num_attributes", 0), ("manifest.json", "'num_attributes'", "not 0")),
    ("num_attributes text", lambda b: _set_manifest(b, "num_attributes", "three"),
     ("manifest.json", "'num_attributes'", "not 'three'")),
    ("num_attributes too small", lambda b: _set_manifest(b, "num_attributes", 2), ("test_gbl.parquet", "attribute 2", "0..1")),
]


@pytest.mark.parametrize("case, breaks, fragments", BAD_BENCHMARK, ids=[c[0] for c in BAD_BENCHMARK])
def test_score_bad_benchmark(case, breaks, fragments, capsys, tmp_path, tiny_benchmark):
    bench = tmp_path / "bench"
    shutil.copytree(tiny_benchmark, bench)
    write_predictions(tmp_path / "p.csv", [(i, 0) for i in split_ids(bench)])
    breaks(bench)
    code, _, err = run_cli(capsys, "score", "--benchmark", bench, "--split", "glt/test_gbl", "--predictions", tmp_path / "p.csv")
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("glt: error:") and "Traceback" not in err, err
    for f in fragments:
        assert f in err, err


def test_score_checks_attributes_itself(tmp_path, tiny_benchmark):
    """glt.evaluation.score.check_attributes, whatever the benchmark loader checks before it."""
    from glt.benchmark import Benchmark
    from glt.errors import GLTError
    from glt.evaluation.score import check_attributes

    bench = Benchmark(tiny_benchmark)
    table = bench.split("glt/test_gbl")
    assert check_attributes(bench, "glt/test_gbl", table.attribute, None) == 3
    for bad, fragment in [(5, "attribute 5 is outside 0..2"), (-1, "attribute -1 is outside 0..2")]:
        attribute = table.attribute.copy()
        attribute[1] = bad
        with pytest.raises(GLTError, match=fragment) as e:
            check_attributes(bench, "glt/test_gbl", attribute, None)
        assert "test_gbl.parquet" in str(e.value)
    with pytest.raises(GLTError, match="'attribute_names' has 2 names"):
        bench.manifest.attribute_names = ["a", "b"]
        check_attributes(bench, "glt/test_gbl", table.attribute, np.zeros((len(table), 3), np.uint8))
    bench.manifest.attribute_names = []
    bench.manifest.num_attributes = 0
    with pytest.raises(GLTError, match="'num_attributes' must be a positive integer"):
        check_attributes(bench, "glt/test_gbl", table.attribute, None)


def _rows(ids, last):
    return [(i, 0) for i in ids[:-1]] + [(ids[-1], last)]


# predictions file content -> expected fragment
BAD_PREDICTIONS = [
    ("missing id", lambda ids: ([(i, 0) for i in ids[1:]], None), "1 ids of the split have no prediction"),
    ("duplicate id", lambda ids: ([(i, 0) for i in ids] + [(ids[2], 1)], None), "appears more than once"),
    ("unknown id", lambda ids: ([(i, 0) for i in ids] + [("intruder", 1)], None), "1 ids are not in the split, e.g. intruder"),
    ("unknown instead of a known id", lambda ids: ([(i, 0) for i in ids[1:]] + [("intruder", 1)], None),
     "have no prediction"),
    ("non-integer", lambda ids: (_rows(ids, "1.5"), None), "prediction '1.5'"),
    ("text", lambda ids: (_rows(ids, "cat"), None), "prediction 'cat'"),
    ("boolean", lambda ids: (_rows(ids, "True"), None), "prediction 'True'"),
    ("empty", lambda ids: (_rows(ids, ""), None), "is not a class index"),
    ("infinite", lambda ids: (_rows(ids, "inf"), None), "prediction 'inf'"),
    ("huge", lambda ids: (_rows(ids, "1" * 30), None), "is not a class index"),
    ("too large", lambda ids: (_rows(ids, 4), None), "prediction 4 of id"),
    ("negative", lambda ids: (_rows(ids, -1), None), "prediction -1 of id"),
    ("wrong columns", lambda ids: ([(i, 0) for i in ids], "id,label"), "expected the columns id,prediction"),
    ("header only", lambda ids: ([], None), "have no prediction"),
]


@pytest.mark.parametrize("case, make, fragment", BAD_PREDICTIONS, ids=[c[0] for c in BAD_PREDICTIONS])
def test_score_bad_predictions(case, make, fragment, capsys, tmp_path, tiny_benchmark):
    rows, header = make(split_ids(tiny_benchmark))
    pred = tmp_path / "p.csv"
    write_predictions(pred, rows, header or "id,prediction")
    code, _, err = run_cli(capsys, "score", "--benchmark", tiny_benchmark, "--split", "glt/test_gbl", "--predictions", pred)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("glt: error:") and "Traceback" not in err, err
    assert "p.csv" in err and fragment in err, err


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00garbage\x00\n\x00\x01", b'id,prediction\n"s1,0\n'])
def test_score_unreadable_predictions(content, capsys, tmp_path, tiny_benchmark):
    pred = tmp_path / "p.csv"
    pred.write_bytes(content)
    code, _, err = run_cli(capsys, "score", "--benchmark", tiny_benchmark, "--split", "glt/test_gbl", "--predictions", pred)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("glt: error:") and "Traceback" not in err, err
    assert "p.csv" in err, err


# ---- no torch -----------------------------------------------------------------------------------------

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _run_without_torch(tmp_path, bench, code):
    write_predictions(tmp_path / "p.csv", [(i, 0) for i in split_ids(bench)])
    script = (
        "import sys\n" + code + "\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "users = sorted(n for n, m in list(sys.modules.items()) if n.startswith('glt') and 'torch' in vars(m))\n"
        "print(f'TORCH (glt modules holding it: {users})' if loaded else 'NO-TORCH', file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = [str(bench), str(tmp_path / "p.csv")]
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, timeout=300)


def test_score_scoring_code_does_not_import_torch(tmp_path, tiny_benchmark):
    """glt.cli.score.run and glt.evaluation: the part of `glt score` below the command-line dispatch."""
    r = _run_without_torch(tmp_path, tiny_benchmark, (
        "import argparse, glt.cli.score as s\n"
        "a = argparse.Namespace(benchmark=sys.argv[1], split='glt/test_gbl', predictions=sys.argv[2], out=None)\n"
        "assert s.run(a) == 0"
    ))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["num_samples"] > 0
    assert r.stderr.strip().endswith("NO-TORCH"), r.stderr


def test_glt_score_does_not_import_torch(tmp_path, tiny_benchmark):
    """`glt score` as the command line runs it: glt.cli.main builds every subcommand's parser, then
    dispatches to score."""
    r = _run_without_torch(tmp_path, tiny_benchmark, (
        "from glt.cli.main import main\n"
        "try:\n"
        "    main(['score', '--benchmark', sys.argv[1], '--split', 'glt/test_gbl', '--predictions', sys.argv[2]])\n"
        "except SystemExit as e:\n"
        "    assert e.code in (0, None), e.code"
    ))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["num_samples"] > 0
    assert r.stderr.strip().endswith("NO-TORCH"), r.stderr
