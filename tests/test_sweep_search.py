"""`glt sweep --search random|optuna`: seeded draws, trial records, failures that do not stop the sweep,
re-runs that skip finished trials, Optuna pruning from the per-epoch metrics."""

from __future__ import annotations

import json
import math
import pytest
from omegaconf import OmegaConf

from glt.cli.main import main

FAST = ["epochs=1", "model.backbone=small_cnn", "data.batch_size=16", "data.num_workers=0", "progress=false", "threads=1"]


def cli(*args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    return e.value.code


def in_range(dist, value) -> bool:
    from glt.search.space import Choice, IntUniform, LogUniform, Uniform

    if isinstance(dist, Choice):
        return value in dist.options
    if isinstance(dist, IntUniform):
        return isinstance(value, int) and dist.low <= value <= dist.high
    assert isinstance(dist, (LogUniform, Uniform))
    return dist.low <= value <= dist.high


def test_random_plan_is_seeded_and_in_range(tmp_path):
    from glt.sweeps.plan import method_space, plan_trials

    settings = {"benchmark": "b", "seeds": [0, 1], "search_seed": 5}
    a = plan_trials(tmp_path, ["ce", "ifl"], settings, "random", 4)
    b = plan_trials(tmp_path, ["ce", "ifl"], settings, "random", 4)
    c = plan_trials(tmp_path, ["ce", "ifl"], {**settings, "search_seed": 6}, "random", 4)
    assert [r.draw for r in a] == [r.draw for r in b]  # the same seed, the same draws
    assert [r.draw for r in a] != [r.draw for r in c]
    assert [r.trial for r in a] == ["t000", "t001", "t002", "t003"] * 2
    assert len({json.dumps(r.draw, sort_keys=True) for r in a}) == 8  # every draw its own
    for r in a:
        space = method_space(r.method)
        assert set(r.draw) == set(space) and all(in_range(space[k], v) for k, v in r.draw.items())
        assert r.overrides[-1] == "log_test_metrics=true"
        assert r.runs == {s: f"trials/{r.method}/{r.trial}/seed{s}" for s in ("0", "1")}


def test_random_sweep_records_failures_and_resumes(tiny_benchmark, tmp_path, monkeypatch, capsys):
    import glt.experiment

    out = tmp_path / "sw"
    args = ["sweep", "--benchmark", tiny_benchmark, "--methods", "ce", "--seeds", "0", "--out", out,
            "--search", "random", "--trials", "2", "--search-seed", "3", *FAST]
    real = glt.experiment.run_protocols

    def flaky(benchmark, method, folder, **kw):  # trial t001 fails once started
        if "t001" in str(folder):
            raise RuntimeError("loss is NaN\nsecond line")
        return real(benchmark, method, folder, **kw)

    monkeypatch.setattr(glt.experiment, "run_protocols", flaky)
    assert cli(*args) == 1  # the failed trial does not stop the sweep; the exit status says it failed
    captured = capsys.readouterr().out
    assert "1 done, 1 failed" in captured
    t0 = json.loads((out / "trials/ce/t000/trial.json").read_text())
    t1 = json.loads((out / "trials/ce/t001/trial.json").read_text())
    assert (t0["status"], t1["status"]) == ("done", "failed")
    assert t1["error"] == "RuntimeError: loss is NaN"
    # the draw is what trained: the run's resolved config holds it, with per-epoch test metrics on
    cfg = OmegaConf.load(out / "trials/ce/t000/seed0/glt/config.yaml")
    assert math.isclose(cfg.optim.lr, t0["draw"]["optim.lr"]) and cfg.log_test_metrics is True
    assert t0["config"]["optim"]["weight_decay"] == pytest.approx(t0["draw"]["optim.weight_decay"])
    assert (out / "selection.md").is_file()
    # --status: the counts and a line per trial, the error named
    assert cli("sweep", "--status", out) == 0
    status = capsys.readouterr().out
    assert status.splitlines()[0].startswith("2 trial(s): 0 queued, 0 running, 1 done, 1 failed")
    assert "ce/t001  failed" in status and "loss is NaN" in status
    # a re-run skips the finished trial and retries the failed one
    monkeypatch.setattr(glt.experiment, "run_protocols", real)
    stamp = (out / "trials/ce/t000/seed0/glt/eval.json").stat().st_mtime_ns
    assert cli(*args) == 0
    assert (out / "trials/ce/t000/seed0/glt/eval.json").stat().st_mtime_ns == stamp
    assert json.loads((out / "trials/ce/t001/trial.json").read_text())["status"] == "done"
    sel = json.loads((out / "selection.json").read_text())
    assert sel["val_accuracy"]["ce"]["GLT"]["trials"] == 2
    # another search seed into the same folder is refused, naming the trial record
    assert cli(*args[:-len(FAST)], "--search-seed", "4", *FAST) == 2
    assert "trials/ce/t000/trial.json holds another trial" in capsys.readouterr().err
    # --dry-run prints one `glt run` per (trial, seed) with the draw as overrides
    assert cli(*args, "--dry-run") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(x.startswith("glt run --benchmark") for x in lines)
    assert f"optim.lr={t0['draw']['optim.lr']!r}" in lines[0] and lines[0].endswith("log_test_metrics=true")


def test_optuna_search_prunes_and_records(tiny_benchmark, tmp_path):
    import optuna

    from glt.sweeps.launchers import LaunchOptions
    from glt.sweeps.runner import SweepSettings, run_sweep

    class PruneSecond(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number == 1

    out = tmp_path / "op"
    s = SweepSettings(str(tiny_benchmark), ["ce"], [0], out, ["epochs=2", *FAST[1:]], search="optuna", trials=2)
    counts = run_sweep(s, "local", LaunchOptions(), pruner=PruneSecond(), poll=0.1)
    assert counts == {"done": 1, "pruned": 1}
    storage = f"sqlite:///{out.resolve() / 'optuna.db'}"
    t0, t1 = optuna.load_study(study_name="glt-ce", storage=storage).trials
    assert (t0.state, t1.state) == (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    rec = json.loads((out / "trials/ce/o000/trial.json").read_text())
    assert rec["status"] == "done" and rec["draw"] == t0.params and rec["objective"] == pytest.approx(t0.value)
    # the value Optuna got: per track the best val accuracy of the trial (one seed), averaged over the tracks
    best = [max(json.loads(x)["val_accuracy"] for x in (out / f"trials/ce/o000/seed0/{track}/metrics.jsonl")
                .read_text().splitlines()) for track in ("glt", "cbl")]
    assert t0.value == pytest.approx(sum(best) / 2)
    assert sorted(t0.intermediate_values) == [0, 1]  # one report per epoch of the first seed's glt track
    rec = json.loads((out / "trials/ce/o001/trial.json").read_text())
    assert rec["status"] == "pruned" and rec["pruned_step"] == 0 and rec["draw"] == t1.params
    # finished: a re-run asks Optuna for nothing more
    assert run_sweep(s, "local", LaunchOptions(), poll=0.1) == counts
    assert len(optuna.load_study(study_name="glt-ce", storage=storage).trials) == 2
    assert json.loads((out / "sweep.json").read_text())["storage"] == storage
