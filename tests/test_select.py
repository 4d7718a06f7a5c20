"""Model selection (glt.report.select): the pure rule over synthetic records against a brute-force reference,
the reading of run folders, and `glt report --select`."""

from __future__ import annotations

import itertools
import json
import statistics

import numpy as np
import pytest

from glt.report.select import RULES, load_records, select

PROTOCOLS = ("CLT", "GLT", "ALT")
METRICS = ("accuracy", "precision", "worst_attribute_accuracy", "worst_class_accuracy")


def synthetic(seed: int, methods=("a", "b"), trials=("t0", "t1", "t2"), seeds=(0, 1, 2), steps=5, grid=None):
    """Random records; `grid` rounds values so that ties happen."""
    rng = np.random.default_rng(seed)
    out = []
    for m, t, s, p, k in itertools.product(methods, trials, seeds, PROTOCOLS, range(steps)):
        v = rng.random(4)
        w = rng.random(4)
        if grid:
            v, w = np.round(v * grid) / grid, np.round(w * grid) / grid
        out.append({"method": m, "trial": t, "seed": s, "protocol": p, "step": k, "epoch": 10 + k,
                    "params": {"optim.lr": {"t0": 0.1, "t1": 0.2, "t2": 0.3}[t]},
                    "val": dict(zip(METRICS, map(float, v))), "test": dict(zip(METRICS, map(float, w)))})
    return out


def brute_force(records, score):
    """Every (trial, step) of every (method, protocol); the mean score over the trial's seeds; the largest,
    the first trial in name order then the earliest step on a tie."""
    keys = sorted({(r["method"], r["protocol"]) for r in records})
    out = {}
    for m, p in keys:
        mine = [r for r in records if (r["method"], r["protocol"]) == (m, p)]
        candidates = []
        for t in sorted({r["trial"] for r in mine}):
            seeds = {r["seed"] for r in mine if r["trial"] == t}
            for k in sorted({r["step"] for r in mine if r["trial"] == t}):
                at = [r for r in mine if r["trial"] == t and r["step"] == k]
                if {r["seed"] for r in at} != seeds:
                    continue
                candidates.append((statistics.fmean(score(r) for r in at), t, k, at))
        best = candidates[0]
        for c in candidates[1:]:
            if c[0] > best[0]:
                best = c
        out[(m, p)] = best
    return out


SCORES = {
    "val_accuracy": lambda r: r["val"]["accuracy"],
    "val_worst_attribute": lambda r: r["val"]["worst_attribute_accuracy"],
    "val_worst_class": lambda r: r["val"]["worst_class_accuracy"],
    "val_precision": lambda r: r["val"]["precision"],
    "oracle": lambda r: r["test"]["accuracy"],
}


@pytest.mark.parametrize("rule", sorted(SCORES))
@pytest.mark.parametrize("seed,grid", [(0, None), (1, None), (2, 4)])
def test_select_matches_brute_force(rule, seed, grid):
    records = synthetic(seed, grid=grid)
    got = select(records, rule)
    want = brute_force(records, SCORES[rule])
    assert set(got) == set(want)
    for key, (mean, trial, step, at) in want.items():
        c = got[key]
        assert (c.trial, c.step, c.epoch) == (trial, step, 10 + step), (rule, key)
        assert c.score == pytest.approx(mean)
        assert c.seeds == 3 and c.trials == 3
        assert c.params == {"optim.lr": {"t0": 0.1, "t1": 0.2, "t2": 0.3}[trial]}
        for m in METRICS:
            values = [r["test"][m] for r in at]
            assert c.test[m][0] == pytest.approx(statistics.fmean(values))
            assert c.test[m][1] == pytest.approx(statistics.stdev(values))


def test_select_averages_over_seeds_before_picking():
    """Seed 0 peaks at step 0 of t1, but averaged over the two seeds t0's step 1 is best (0.7 vs 0.6)."""
    def rec(trial, seed, step, acc, test):
        return {"method": "m", "trial": trial, "seed": seed, "protocol": "GLT", "step": step, "epoch": step,
                "params": {}, "val": {"accuracy": acc}, "test": {"accuracy": test}}

    records = [rec("t1", 0, 0, 0.95, 0.1), rec("t1", 1, 0, 0.25, 0.2), rec("t1", 0, 1, 0.5, 0.3), rec("t1", 1, 1, 0.5, 0.3),
               rec("t0", 0, 0, 0.1, 0.4), rec("t0", 1, 0, 0.1, 0.4), rec("t0", 0, 1, 0.6, 0.8), rec("t0", 1, 1, 0.8, 0.6)]
    c = select(records, "val_accuracy")[("m", "GLT")]
    assert (c.trial, c.step) == ("t0", 1) and c.score == pytest.approx(0.7)
    assert c.test["accuracy"] == pytest.approx((0.7, statistics.stdev([0.8, 0.6])))
    # the oracle reads the test numbers: t0 step 1 too (0.7), not t1's 0.3
    o = select(records, "oracle")[("m", "GLT")]
    assert (o.trial, o.step) == ("t0", 1)
    # a step some seed lacks is not a candidate: drop seed 1's t0 step 1 -> t1 step 0 (0.6) wins
    c = select([r for r in records if (r["trial"], r["seed"], r["step"]) != ("t0", 1, 1)], "val_accuracy")[("m", "GLT")]
    assert (c.trial, c.step) == ("t1", 0)


def test_rules_are_registered_and_the_oracle_is_marked():
    assert [n for n, r in RULES.items() if r.oracle] == ["oracle"]
    assert "upper bound" in RULES.get("oracle").label


# ---- run folders ---------------------------------------------------------------------------------------------


def fake_run(root, method, seed, trial, lr, curves, select_every=1):
    """A `glt run` folder written by hand: for each track a config.yaml, metrics.jsonl (two stages: the first
    is never selected) with per-epoch val and test numbers; results.json; the trial's record beside it."""
    run = root / "trials" / method / trial / f"seed{seed}"
    for track in ("glt", "cbl"):
        (run / track).mkdir(parents=True)
        (run / track / "config.yaml").write_text(f"select_every: {select_every}\n")
        lines = [{"stage_index": 0, "epoch": 0, "val_accuracy": 9.0}]  # stage 0: never selected
        for e, (val, test) in enumerate(curves[track]):
            lines.append({"stage_index": 1, "epoch": e, "val_accuracy": val, "val_precision": val,
                          "val_worst_attribute_accuracy": val, "val_worst_class_accuracy": val,
                          "test": {s: {"accuracy": test, "precision": test / 2} for s in ("test_cbl", "test_gbl")}})
        (run / track / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = {"method": method, "seed": seed, **{p: {"accuracy": 0.0, "precision": 0.0} for p in PROTOCOLS}}
    from glt.experiment import RESULTS

    (run / RESULTS).write_text(json.dumps(result))
    (run.parent / "trial.json").write_text(json.dumps({"trial": trial, "draw": {"optim.lr": lr}}))
    return run, result


def test_records_from_run_folders_and_report_cli(tmp_path, capsys):
    from glt.cli.main import main

    curves = {"glt": [(0.2, 0.5), (0.9, 0.6), (0.4, 0.99), (0.5, 0.7)], "cbl": [(0.1, 0.1), (0.3, 0.3), (0.2, 0.2), (0.25, 0.4)]}
    runs = [fake_run(tmp_path, "ce", s, "t000", 0.05, curves, select_every=2) for s in (0, 1)]
    records = load_records(runs)
    # stage 1 only; with select_every 2, epochs 0, 2 and the last (3)
    assert sorted({r["epoch"] for r in records}) == [0, 2, 3]
    assert {r["protocol"] for r in records} == set(PROTOCOLS) and all(r["params"] == {"optim.lr": 0.05} for r in records)
    choices = select(records, "val_accuracy")
    # epoch 1 (0.9) is not selectable: the last epoch (0.5) wins on glt; test accuracy 0.7 there
    assert (choices[("ce", "GLT")].epoch, choices[("ce", "GLT")].test["accuracy"][0]) == (3, pytest.approx(0.7))
    assert choices[("ce", "ALT")].epoch == 3
    assert select(records, "oracle")[("ce", "CLT")].epoch == 2

    with pytest.raises(SystemExit) as e:
        main(["report", str(tmp_path), "--select", "all", "--out", str(tmp_path / "rep")])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.count("| ce | 1 | 2 |") == 5  # one table per rule: 1 trial, 2 seeds
    assert "test-set oracle (upper bound)" in out and "optim.lr=0.05" in out
    sel = json.loads((tmp_path / "rep" / "selection.json").read_text())
    assert sel["val_accuracy"]["ce"]["GLT"]["accuracy"]["mean"] == pytest.approx(0.7)
    assert sel["oracle"]["ce"]["GLT"]["accuracy"]["mean"] == pytest.approx(0.99)
