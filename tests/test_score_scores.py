"""Scoring class scores: top-k accuracy and the expected calibration error against direct loops, cases known by
construction, `glt score` with .npy / CSV scores files, its key order, --summary, and every bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from conftest import make_tiny_benchmark
from glt.benchmark import Benchmark
from glt.cli.main import main
from glt.errors import GLTError
from glt.evaluation import SplitMetadata
from glt.evaluation.calibration import expected_calibration_error, top_k_accuracy
from glt.evaluation.score import score_predictions, score_scores
from glt.evaluation.score_metrics import detect_kind, evaluate_scores

# ---- references, written from the definitions -----------------------------------------------------------


def loop_softmax(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    return [v / sum(e) for v in e]


def loop_top_k(scores, labels, k):
    """Classes ranked by score, highest first, equal scores by class index; hit if the label is in the first k."""
    hits = 0
    for row, y in zip(scores.tolist(), labels.tolist()):
        ranked = sorted(range(len(row)), key=lambda c: (-row[c], c))
        hits += y in ranked[:k]
    return hits / len(labels)


def loop_ece(probs, labels, bins=15):
    """Bins (b/15, (b+1)/15] of the max probability (0 in the first); sum of |B|/N * |acc(B) - conf(B)|."""
    members = [[] for _ in range(bins)]
    for row, y in zip(probs.tolist(), labels.tolist()):
        conf = max(row)
        pred = row.index(conf)  # the first maximum, as the arg-max
        b = next((b for b in range(bins) if b / bins < conf <= (b + 1) / bins), 0)
        members[b].append((conf, pred == y))
    total = 0.0
    for m in members:
        if m:
            acc = sum(ok for _, ok in m) / len(m)
            conf = sum(c for c, _ in m) / len(m)
            total += len(m) / len(labels) * abs(acc - conf)
    return total


def random_scores(seed, n=400, c=12):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    logits = rng.normal(0, 2, (n, c))
    logits[np.arange(n), labels] += rng.normal(1.5, 1.5, n)
    logits = np.round(logits, 1)  # ties, which the rank rule decides by class index
    return labels, logits


# ---- the numbers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_top_k_matches_a_loop(seed):
    labels, logits = random_scores(seed)
    for k in (1, 2, 5):
        assert top_k_accuracy(logits, labels, k) == pytest.approx(loop_top_k(logits, labels, k), abs=1e-12)
    assert top_k_accuracy(logits, labels, 1) == pytest.approx((logits.argmax(1) == labels).mean())
    assert top_k_accuracy(logits, labels, 12) == 1.0


@pytest.mark.parametrize("seed", range(4))
def test_ece_matches_a_loop(seed):
    labels, logits = random_scores(seed)
    probs = np.array([loop_softmax(r) for r in logits.tolist()])
    assert expected_calibration_error(probs, labels) == pytest.approx(loop_ece(probs, labels), abs=1e-12)
    meta = SplitMetadata(labels, 12)
    out = evaluate_scores(meta, logits, "logits")  # logits are softmaxed
    assert out["expected_calibration_error"] == pytest.approx(loop_ece(probs, labels), abs=1e-12)
    assert out["top5_accuracy"] == pytest.approx(loop_top_k(logits, labels, 5), abs=1e-12)
    assert out["top_k"] == 5 and out["score_kind"] == "logits"
    assert out["accuracy"] == pytest.approx((logits.argmax(1) == labels).mean())


def test_ece_known_by_construction():
    labels = np.array([0, 1, 2, 1, 0])
    onehot = np.eye(3)[labels]
    assert expected_calibration_error(onehot, labels) == 0.0  # confident and right
    assert expected_calibration_error(np.eye(3)[(labels + 1) % 3], labels) == 1.0  # confident and wrong
    # constant confidence 0.7 on the predicted class, 6 of 10 right: ECE = |0.7 - 0.6|
    n, c = 10, 4
    labels = np.arange(n) % c
    preds = np.where(np.arange(n) < 6, labels, (labels + 1) % c)
    probs = np.full((n, c), 0.1)
    probs[np.arange(n), preds] = 0.7
    assert expected_calibration_error(probs, labels) == pytest.approx(0.1, abs=1e-12)
    # a confidence on a bin edge belongs to the bin below it: 0.6 = 9/15 is in (8/15, 9/15], 0.61 in the next
    edge, edge_labels = np.array([[0.6, 0.4], [0.39, 0.61]]), np.array([0, 0])
    assert expected_calibration_error(edge, edge_labels) == pytest.approx(0.5 * 0.4 + 0.5 * 0.61, abs=1e-12)
    assert expected_calibration_error(edge, edge_labels) == pytest.approx(loop_ece(edge, edge_labels), abs=1e-12)
    # the uniform model: confidence 1/C in the first bin, accuracy of class 0 everywhere
    probs = np.full((n, c), 1 / c)
    assert expected_calibration_error(probs, labels) == pytest.approx(abs((labels == 0).mean() - 1 / c))


def test_kind_detection():
    labels, logits = random_scores(0, n=50)
    probs = np.array([loop_softmax(r) for r in logits.tolist()])
    assert detect_kind(probs) == "probs" and detect_kind(logits) == "logits"
    assert detect_kind(np.abs(logits)) == "logits"  # non-negative, rows not summing to 1
    meta = SplitMetadata(labels, 12)
    a, b = evaluate_scores(meta, probs), evaluate_scores(meta, logits)
    assert a["score_kind"] == "probs" and b["score_kind"] == "logits"
    assert a["expected_calibration_error"] == pytest.approx(b["expected_calibration_error"], abs=1e-12)
    with pytest.raises(ValueError, match="sum to 1 within 1e-3"):
        evaluate_scores(meta, logits, "probs")
    with pytest.raises(ValueError, match="row 0 sums to"):  # in [0, 1] but not probabilities: no silent softmax
        evaluate_scores(meta, np.full((50, 12), 0.5))
    assert evaluate_scores(meta, np.full((50, 12), 0.5), "logits")["score_kind"] == "logits"


# ---- glt score --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench7(tmp_path_factory):
    return make_tiny_benchmark(tmp_path_factory.mktemp("bench7") / "b", num_classes=7, seed=2)


def split_of(bench):
    t = Benchmark(bench).split("glt/test_gbl")
    return t.id.astype(str), t.label


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err.strip()


def score_args(bench, path, *extra):
    return ("score", "--benchmark", bench, "--split", "glt/test_gbl", "--predictions", path, *extra)


def logits_for(labels, seed=0, c=7):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1, (len(labels), c))
    z[np.arange(len(labels)), labels] += 1.2
    return z


def write_scores_csv(path, ids, scores, order=None):
    df = pd.DataFrame(scores, columns=[str(c) for c in range(scores.shape[1])])
    df.insert(0, "id", ids)
    (df if order is None else df.iloc[order]).to_csv(path, index=False)


def test_npy_and_csv_scores_agree_with_the_labels_file(capsys, tmp_path, bench7):
    ids, labels = split_of(bench7)
    z = logits_for(labels)
    np.save(tmp_path / "s.npy", z)
    write_scores_csv(tmp_path / "s.csv", ids, z, order=np.random.default_rng(1).permutation(len(ids)))
    pd.DataFrame({"id": ids, "prediction": z.argmax(1)}).to_csv(tmp_path / "p.csv", index=False)
    results = []
    for name in ("s.npy", "s.csv"):
        code, out, err = run_cli(capsys, *score_args(bench7, tmp_path / name))
        assert code == 0, err
        results.append(json.loads(out))
    code, out, _ = run_cli(capsys, *score_args(bench7, tmp_path / "p.csv"))
    classes = json.loads(out)
    probs = np.array([loop_softmax(r) for r in z.tolist()])
    for res in results:
        assert res["top5_accuracy"] == pytest.approx(loop_top_k(z, labels, 5), abs=1e-12)
        assert res["expected_calibration_error"] == pytest.approx(loop_ece(probs, labels), abs=1e-12)
        assert res["score_kind"] == "logits" and res["top_k"] == 5
        assert {k: v for k, v in res.items() if k not in ("top5_accuracy", "expected_calibration_error",
                                                          "score_kind", "top_k")} == classes
        assert res["top5_accuracy"] < 1.0  # 7 classes: top-5 is not trivially 1
    head = list(results[0])[:8]
    assert head == ["accuracy", "precision", "f1", "worst_class_accuracy", "worst_attribute_accuracy",
                    "worst_group_accuracy", "top5_accuracy", "expected_calibration_error"]
    assert list(classes)[:6] == head[:6]
    for key in results[0]:
        assert key == "definitions" or key in results[0]["definitions"]
    # probabilities, detected or declared, give the same numbers
    np.save(tmp_path / "p.npy", probs)
    for extra in ((), ("--scores", "probs")):
        code, out, err = run_cli(capsys, *score_args(bench7, tmp_path / "p.npy", *extra))
        assert code == 0, err
        res = json.loads(out)
        assert res["score_kind"] == "probs"
        assert res["expected_calibration_error"] == pytest.approx(results[0]["expected_calibration_error"], abs=1e-9)
    # the Python function, with an array
    direct = score_scores(bench7, "glt/test_gbl", z, "logits")
    assert direct["top5_accuracy"] == results[0]["top5_accuracy"]
    assert score_predictions(bench7, "glt/test_gbl", tmp_path / "s.npy")["accuracy"] == classes["accuracy"]


def test_summary_is_an_aligned_table(capsys, tmp_path, bench7):
    _, labels = split_of(bench7)
    np.save(tmp_path / "s.npy", logits_for(labels))
    code, out, err = run_cli(capsys, *score_args(bench7, tmp_path / "s.npy", "--summary", "--out", tmp_path / "m.json"))
    assert code == 0, err
    res = json.loads((tmp_path / "m.json").read_text())  # --out keeps the JSON
    lines = out.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:] if line.strip()}
    for key in ("accuracy", "worst_group_accuracy", "top5_accuracy", "expected_calibration_error"):
        assert float(rows[key][0]) == pytest.approx(res[key], abs=5e-5)
    assert rows["many"][3] == str(res["by_frequency"]["many"]["num_samples"])
    table = [line for line in lines[1:] if line.strip()][:9]
    assert len({len(line) for line in table}) == 1  # the value column is right-aligned


def test_a_classes_file_refuses_a_scores_kind(capsys, tmp_path, bench7):
    ids, labels = split_of(bench7)
    pd.DataFrame({"id": ids, "prediction": labels}).to_csv(tmp_path / "p.csv", index=False)
    code, _, err = run_cli(capsys, *score_args(bench7, tmp_path / "p.csv", "--scores", "logits"))
    assert code == 2 and "p.csv" in err and "needs a scores file" in err, err


def _with(z, row, col, value):
    z = z.copy()
    z[row, col] = value
    return z


def _bad_probs(labels):
    p = np.eye(7)[labels] * 0.9 + 0.1 / 7
    p[3, 0] += 0.01
    return p


def _negative_probs(labels):
    p = np.eye(7)[labels]
    p[2, 0], p[2, 1] = -0.5, p[2, 1] + 0.5
    return p


# name -> (how to write the file from (path, ids, labels), extra arguments, fragments of the one error line)
BAD_SCORES = {
    "npy rows": (lambda p, ids, y: np.save(p, logits_for(y)[:-1]), (), ("s.npy", "expected", "x7")),
    "npy columns": (lambda p, ids, y: np.save(p, logits_for(y)[:, :6]), (), ("s.npy", "x6", "one column per class")),
    "npy 1-d": (lambda p, ids, y: np.save(p, y.astype(float)), (), ("s.npy", "shape")),
    "npy nan": (lambda p, ids, y: np.save(p, _with(logits_for(y), 4, 2, np.nan)), (), ("s.npy", "nan", "class 2", "not finite")),
    "npy inf": (lambda p, ids, y: np.save(p, _with(logits_for(y), 1, 0, np.inf)), (), ("s.npy", "inf", "not finite")),
    "npy text": (lambda p, ids, y: np.save(p, np.full((len(y), 7), "a")), (), ("s.npy", "expected real numbers")),
    "npy objects": (lambda p, ids, y: np.save(p, np.array([None] * 3, dtype=object)), (), ("s.npy", "malformed")),
    "npy garbage": (lambda p, ids, y: p.write_bytes(b"not an array"), (), ("s.npy", "malformed")),
    "npy missing": (lambda p, ids, y: None, (), ("s.npy", "not found")),
    "probs sum": (lambda p, ids, y: np.save(p, _bad_probs(y)), ("--scores", "probs"), ("s.npy", "sums to", "within 1e-3")),
    "probs sum detected": (lambda p, ids, y: np.save(p, _bad_probs(y)), (), ("s.npy", "sums to", "--scores logits")),
    "probs negative": (lambda p, ids, y: np.save(p, _negative_probs(y)), ("--scores", "probs"), ("s.npy", "negative", "row 2")),
    "csv columns": (lambda p, ids, y: write_scores_csv(p, ids, logits_for(y)[:, :6]), (), ("s.csv", "6 class columns", "7 classes")),
    "csv header": (lambda p, ids, y: p.write_text("id,a,b\n"), (), ("s.csv", "expected the columns id,prediction", "id,0,...,6")),
    "csv nan": (lambda p, ids, y: write_scores_csv(p, ids, _with(logits_for(y), 0, 3, np.nan)), (), ("s.csv", "not")),
    "csv text": (lambda p, ids, y: write_scores_csv(p, ids, _text(y)), (), ("s.csv", "'cat'", "class 1", "not a number")),
    "csv missing id": (lambda p, ids, y: write_scores_csv(p, ids[1:], logits_for(y)[1:]), (), ("s.csv", "have no prediction")),
    "csv unknown id": (lambda p, ids, y: write_scores_csv(p, np.append(ids, "intruder"), np.vstack([logits_for(y), np.zeros(7)])),
                       (), ("s.csv", "not in the split", "intruder")),
    "csv duplicate id": (lambda p, ids, y: write_scores_csv(p, np.append(ids, ids[0]), np.vstack([logits_for(y), np.zeros(7)])),
                         (), ("s.csv", "more than once")),
    "csv probs": (lambda p, ids, y: write_scores_csv(p, ids, _bad_probs(y)), ("--scores", "probs"), ("s.csv", "sums to")),
}


def _text(y):
    z = logits_for(y).astype(object)
    z[2, 1] = "cat"
    return z


@pytest.mark.parametrize("case", list(BAD_SCORES))
def test_bad_scores_files(case, capsys, tmp_path, bench7):
    write, extra, fragments = BAD_SCORES[case]
    ids, labels = split_of(bench7)
    path = tmp_path / ("s.npy" if case.startswith(("npy", "probs")) else "s.csv")
    write(path, ids, labels)
    code, out, err = run_cli(capsys, *score_args(bench7, path, *extra))
    assert code == 2, out
    assert len(err.splitlines()) == 1 and err.startswith("glt: error:") and "Traceback" not in err, err
    for f in fragments:
        assert f in err, err


def test_bad_array_for_the_python_function(bench7):
    _, labels = split_of(bench7)
    with pytest.raises(GLTError, match="expected"):
        score_scores(bench7, "glt/test_gbl", logits_for(labels)[:, :3])
    with pytest.raises(GLTError, match="not finite"):
        score_scores(bench7, "glt/test_gbl", _with(logits_for(labels), 0, 0, -np.inf))


def test_top_k_is_capped_by_the_class_count():
    labels = np.array([0, 1, 2, 2])
    scores = np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.2, 0.2, 0.6]])
    out = evaluate_scores(SplitMetadata(labels, 3), scores)
    assert out["top_k"] == 3 and out["top5_accuracy"] == 1.0 and out["score_kind"] == "probs"
    assert out["accuracy"] == loop_top_k(scores, labels, 1) == 0.25


def test_scoring_scores_does_not_import_torch(tmp_path, bench7):
    import os
    import subprocess
    import sys
    from pathlib import Path

    _, labels = split_of(bench7)
    np.save(tmp_path / "s.npy", logits_for(labels))
    src = str(Path(__file__).resolve().parents[1] / "src")
    script = ("import sys\nfrom glt.cli.main import main\n"
              "try:\n    main(['score', '--benchmark', sys.argv[1], '--split', 'glt/test_gbl', '--predictions', sys.argv[2]])\n"
              "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
              "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)\n")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-c", script, str(bench7), str(tmp_path / "s.npy")], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "top5_accuracy" in json.loads(r.stdout)
    assert r.stderr.strip().endswith("NO-TORCH"), r.stderr
