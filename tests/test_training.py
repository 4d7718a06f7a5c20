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
from glt.runtime.layout import PROTOCOLS


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
    res = json.loads((run_folder / PROTOCOLS).read_text())
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
    before = json.loads((run_folder / PROTOCOLS).read_text())
    assert cli("eval", run_folder) == 0
    after = json.loads((run_folder / PROTOCOLS).read_text())
    assert after["GLT"]["accuracy"] == before["GLT"]["accuracy"]


def test_report_collects_seeds(run_folder, tmp_path, tiny_benchmark):
    second = tmp_path / "seed1"
    assert cli("run", "--benchmark", tiny_benchmark, "--method", "logit_adj", "--seed", 1, "--out", second,
               *fast_overrides(1)) == 0
    out = tmp_path / "report"
    assert cli("report", run_folder, second, "--out", out) == 0
    summary = json.loads((out / "results.json").read_text())
    a = json.loads((run_folder / PROTOCOLS).read_text())["CLT"]["accuracy"]
    b = json.loads((second / PROTOCOLS).read_text())["CLT"]["accuracy"]
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
            r = json.loads((out / "runs" / m / f"seed{s}" / PROTOCOLS).read_text())
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


# ---- the command line -------------------------------------------------------------------------------------


def test_overrides_anywhere_after_the_command(tiny_benchmark, tmp_path, capsys):
    from glt.cli.main import parse_args

    args = parse_args(["train", "epochs=3", "--benchmark", "B", "optim.lr=0.05", "--out", "O", "seed=2"])
    assert (args.benchmark, args.out) == ("B", "O")
    assert args.overrides == ["epochs=3", "optim.lr=0.05", "seed=2"]  # in the order given: the last one wins
    args = parse_args(["demo", "epochs=2", "--methods", "ce", "optim.lr=0.1"])
    assert args.overrides == ["epochs=2", "optim.lr=0.1"] and args.methods == "ce"
    # end to end: the printed commands carry every override
    assert cli("sweep", "epochs=1", "--benchmark", tiny_benchmark, "--methods", "ce", "--seeds", "0",
               "optim.lr=0.02", "--out", tmp_path / "s", "--dry-run") == 0
    line = capsys.readouterr().out.strip()
    assert line.endswith("epochs=1 optim.lr=0.02"), line
    # a stray word that is no override is still an error
    assert cli("train", "--benchmark", tiny_benchmark, "--out", tmp_path / "r", "--bogus", "epochs=1") == 2
    assert "--bogus" in capsys.readouterr().err


def test_run_folder_works_from_any_directory_and_with_a_moved_benchmark(tiny_benchmark, tmp_path, monkeypatch, capsys):
    import shutil

    bench = tmp_path / "data" / "bench"
    shutil.copytree(tiny_benchmark, bench)
    monkeypatch.chdir(tmp_path / "data")
    assert cli("train", "--benchmark", "bench", "--out", tmp_path / "r", *fast_overrides(1)) == 0
    assert f"benchmark: {bench}\n" in (tmp_path / "r" / "config.yaml").read_text()  # stored absolute
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert cli("eval", "r") == 0
    first = json.loads(capsys.readouterr().out)
    # the benchmark moved: the stored path fails (naming it), --benchmark points at the new place
    bench.rename(tmp_path / "moved")
    assert cli("eval", "r") == 2
    assert str(bench) in capsys.readouterr().err
    assert cli("eval", "r", "--benchmark", "moved") == 0
    assert json.loads(capsys.readouterr().out) == first


def test_startup_imports_no_torch():
    """`glt --help`, `glt methods [NAME]` and the dispatch of `glt score` import neither torch nor torchvision."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from glt.cli.main import main, parse_args\n"
        "if sys.argv[1] == 'parse':\n"
        "    parse_args(sys.argv[2:])\n"
        "else:\n"
        "    try:\n"
        "        main(sys.argv[1:])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))\n"
    )
    for argv in (["--help"], ["methods"], ["methods", "ifl+ce"], ["methods", "bogus"], ["train", "--help"],
                 ["parse", "score", "--benchmark", "B", "--split", "glt/test_gbl", "--predictions", "p.csv"]):
        r = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120)
        assert r.stdout.strip().splitlines()[-1] == "[]", (argv, r.stdout[-300:], r.stderr[-300:])


def test_method_table_matches_registry():
    """`glt methods` prints a static copy of the registry (no torch): it must be current.
    After changing a method's settings: python -m glt.cli.methods --write"""
    from glt.cli.method_table import TABLE
    from glt.cli.methods import registry_table, source_hash

    stale = "stale src/glt/cli/method_table.py: run python -m glt.cli.methods --write"
    assert TABLE["source_hash"] == source_hash(), stale
    assert TABLE == registry_table(), stale


# ---- a training that diverges -----------------------------------------------------------------------------


def test_nan_loss_stops_with_epoch_and_step(tiny_benchmark, tmp_path, capsys, monkeypatch):
    """The loss turns NaN at the 6th step (epoch 1, step 2 of 4): the run stops there, naming both; the
    checkpoint and metrics.jsonl hold epoch 0 only, as strict JSON."""
    import torch

    from glt.methods.ce import CrossEntropy

    original, calls = CrossEntropy.loss, [0]

    def poisoned(self, out, labels):
        calls[0] += 1
        loss = original(self, out, labels)
        return loss * float("nan") if calls[0] == 6 else loss

    monkeypatch.setattr(CrossEntropy, "loss", poisoned)
    out = tmp_path / "r"
    code = cli("train", "--benchmark", tiny_benchmark, "--out", out, *fast_overrides(3))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "NaN or infinite" in err and "epoch 1, step 2 of 4" in err, err
    lines = (out / "metrics.jsonl").read_text().splitlines()

    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in metrics.jsonl"))

    assert [strict(x)["epoch"] for x in lines] == [0]
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 0
    assert not (out / "eval.json").exists()


def test_divergent_learning_rate_stops_cleanly(tiny_benchmark, tmp_path, capsys):
    """A real divergence (a huge learning rate) stops in its first epoch: nothing is left behind."""
    out = tmp_path / "r"
    assert cli("train", "--benchmark", tiny_benchmark, "--out", out, *fast_overrides(2), "optim.lr=1e30") == 2
    err = capsys.readouterr().err
    assert "NaN or infinite" in err and "epoch 0" in err, err
    assert not out.exists()


def test_metrics_log_is_strict_json(tmp_path):
    from glt.runtime.run_dir import RunDir

    run = RunDir(tmp_path)
    run.log({"stage_index": 0, "epoch": 0, "train_loss": float("nan"), "x": [float("inf"), 1.0]})
    line = (tmp_path / "metrics.jsonl").read_text()
    assert "NaN" not in line and "Infinity" not in line
    assert json.loads(line) == {"stage_index": 0, "epoch": 0, "train_loss": None, "x": [None, 1.0]}


def test_checkpoints_record_their_run(run_folder):
    import torch

    for name in ("best.pt", "last.pt"):
        meta = torch.load(run_folder / "glt" / "checkpoints" / name, weights_only=True)["meta"]
        assert meta == {"method": "logit_adj", "num_classes": 4, "backbone": "small_cnn"}


def test_methods_command_reads_the_registry_when_the_table_is_stale(capsys, monkeypatch):
    import glt.cli.method_table as mt

    assert cli("methods", "ifl+ce") == 0
    current = capsys.readouterr().out
    monkeypatch.setitem(mt.TABLE, "source_hash", "stale")
    monkeypatch.setitem(mt.TABLE, "methods", {})  # a stale copy would print nothing right
    assert cli("methods", "ifl+ce") == 0
    assert capsys.readouterr().out == current
