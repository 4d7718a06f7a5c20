"""End to end on the tiny benchmark: train, run folders, glt run / eval / score / report / methods."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import fast_overrides
from glt.cli.main import main
from glt.config import build_config
from glt.engine.trainer import train
from glt.evaluation.score import score_predictions


def cli(*args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    return e.value.code


@pytest.fixture(scope="module")
def run_folder(tiny_benchmark, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "ce"
    assert cli("run", "--benchmark", tiny_benchmark, "--method", "logit_adj", "--out", out, *fast_overrides(2)) == 0
    return out


def test_run_writes_protocols_and_files(run_folder, tiny_benchmark):
    res = json.loads((run_folder / "results.json").read_text())
    assert res["method"] == "logit_adj"
    for p in ("CLT", "GLT", "ALT"):
        for k in ("accuracy", "precision", "f1"):
            assert 0.0 <= res[p][k] <= 1.0
        assert set(res[p]["by_frequency"]) == {"many", "medium", "few"}
    for track in ("glt", "cbl"):
        folder = run_folder / track
        for name in ("config.yaml", "metrics.jsonl", "eval.json", "checkpoints/best.pt", "checkpoints/last.pt"):
            assert (folder / name).is_file(), name
        lines = (folder / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(x)["epoch"] for x in lines] == [0, 1]
    # the protocol numbers are the track runs' numbers for the protocol's split
    ev = json.loads((run_folder / "cbl" / "eval.json").read_text())["splits"]
    assert res["ALT"]["accuracy"] == ev["cbl/test_gbl"]["accuracy"]


def test_saved_predictions_rescore_to_the_same_metrics(run_folder, tiny_benchmark, capsys):
    ev = json.loads((run_folder / "glt" / "eval.json").read_text())["splits"]
    pred = run_folder / "glt" / "predictions" / "glt__test_gbl.csv"
    m = score_predictions(tiny_benchmark, "glt/test_gbl", pred)
    assert m["accuracy"] == ev["glt/test_gbl"]["accuracy"]
    assert m["precision"] == ev["glt/test_gbl"]["precision"]
    assert cli("score", "--benchmark", tiny_benchmark, "--split", "glt/test_gbl", "--predictions", pred) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["f1"] == ev["glt/test_gbl"]["f1"]


def test_eval_rescores_a_run(run_folder, capsys):
    before = json.loads((run_folder / "results.json").read_text())
    assert cli("eval", run_folder) == 0
    after = json.loads((run_folder / "results.json").read_text())
    assert after["GLT"]["accuracy"] == before["GLT"]["accuracy"]


def test_report_collects_seeds(run_folder, tmp_path, tiny_benchmark):
    second = tmp_path / "seed1"
    assert cli("run", "--benchmark", tiny_benchmark, "--method", "logit_adj", "--seed", 1, "--out", second,
               *fast_overrides(1)) == 0
    out = tmp_path / "report"
    assert cli("report", run_folder, second, "--out", out) == 0
    summary = json.loads((out / "results.json").read_text())
    a = json.loads((run_folder / "results.json").read_text())["CLT"]["accuracy"]
    b = json.loads((second / "results.json").read_text())["CLT"]["accuracy"]
    assert summary["logit_adj"]["CLT"]["accuracy"]["mean"] == pytest.approx((a + b) / 2)
    assert summary["logit_adj"]["CLT"]["accuracy"]["std"] == pytest.approx(np.std([a, b], ddof=1))
    assert summary["logit_adj"]["CLT"]["seeds"] == 2
    assert "logit_adj" in (out / "results.md").read_text()
    for fig in ("per_class_accuracy.png", "attribute_accuracy.png"):
        assert (out / "figures" / fig).stat().st_size > 1000


def test_same_seed_same_numbers_and_run_folder_rules(tiny_benchmark, tmp_path):
    cfg = build_config(method="ce", benchmark=str(tiny_benchmark), overrides=fast_overrides(1))
    a = train(cfg, tmp_path / "a")
    b = train(cfg, tmp_path / "b")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # NaN-tolerant equality
    # a complete run with the same config is not trained again
    assert train(cfg, tmp_path / "a") == json.loads((tmp_path / "a" / "eval.json").read_text())["splits"]
    other = build_config(method="ce", benchmark=str(tiny_benchmark), overrides=fast_overrides(1) + ["seed=5"])
    from glt.errors import GLTError

    with pytest.raises(GLTError, match="holds a different run"):
        train(other, tmp_path / "a")
    train(other, tmp_path / "a", overwrite=True)


def test_resume_after_interrupt_matches_uninterrupted(tiny_benchmark, tmp_path):
    cfg = build_config(method="blsoftmax", benchmark=str(tiny_benchmark), overrides=fast_overrides(3))
    full = train(cfg, tmp_path / "full")
    from glt.methods.blsoftmax import BalancedSoftmax

    original = BalancedSoftmax.on_epoch_start

    def crash(self, stage, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return original(self, stage, epoch)

    BalancedSoftmax.on_epoch_start = crash
    try:
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "part")
    finally:
        BalancedSoftmax.on_epoch_start = original
    from glt.errors import GLTError

    with pytest.raises(GLTError, match="--resume"):
        train(cfg, tmp_path / "part")
    resumed = train(cfg, tmp_path / "part", resume=True)
    assert json.dumps(resumed, sort_keys=True) == json.dumps(full, sort_keys=True)
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [0, 1, 2]


def test_methods_command(capsys):
    assert cli("methods") == 0
    listing = capsys.readouterr().out
    for name in ("ce", "blsoftmax", "logit_adj", "ifl", "irm"):
        assert any(line.startswith(name + " ") for line in listing.splitlines())
    assert cli("methods", "ifl+ce") == 0
    assert "wrapper_args.sample_scale = 4.0" in capsys.readouterr().out
    assert cli("methods", "blsoftmx") == 2
    assert "did you mean blsoftmax" in capsys.readouterr().err


def test_sweep_runs_skips_complete_and_prints_commands(tiny_benchmark, tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ("sweep", "--benchmark", tiny_benchmark, "--methods", "ce,logit_adj", "--seeds", "0,1", "--out", out,
            *fast_overrides(1))
    assert cli(*args) == 0
    summary = json.loads((out / "results.json").read_text())
    assert set(summary) == {"ce", "logit_adj"} and summary["ce"]["GLT"]["seeds"] == 2
    for m in ("ce", "logit_adj"):
        for s in (0, 1):
            r = json.loads((out / "runs" / m / f"seed{s}" / "results.json").read_text())
            assert (r["method"], r["seed"]) == (m, s)
    # a second sweep trains nothing again: the run folders are complete
    stamp = (out / "runs" / "ce" / "seed0" / "glt" / "eval.json").stat().st_mtime_ns
    assert cli(*args) == 0
    assert (out / "runs" / "ce" / "seed0" / "glt" / "eval.json").stat().st_mtime_ns == stamp
    capsys.readouterr()
    assert cli(*args, "--dry-run") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(x.startswith("glt run --benchmark") and "--resume" in x for x in lines)
    assert cli(*args, "--dry-run", "--nproc-per-node", "4") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(x.startswith("torchrun --nproc_per_node=4 -m glt run --benchmark") for x in lines)
    assert cli(*args, "--dry-run", "--nproc-per-node", "0") == 2
    assert cli("sweep", "--benchmark", tiny_benchmark, "--methods", "ce,cee", "--out", tmp_path / "x") == 2
