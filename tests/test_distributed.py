"""Multi-process training (torchrun + DDP, gloo on CPU) against the one-process run.

With a batch-independent normalisation and no augmentation, two processes with half the global
batch each must compute the same averaged gradients as one process with the whole batch, so the
trained weights agree up to float summation order. Any error in gradient synchronisation, in the
samplers' split across ranks, in the gathered evaluation or in a method's cross-rank state shows up
as a difference far above that."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import fast_overrides

EXACT = ["data.augment=none", "model.options.norm=group", "threads=1"]


def _torchrun(args: list[str], nproc: int, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", "glt", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _glt(args: list[str], cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "glt", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def _weights(run) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]


def _environments(run) -> list[dict]:
    """The IFL environment statistics of every rebuild, from the run's metrics.jsonl."""
    import json

    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r["ifl_environments"] for r in map(json.loads, lines) if "ifl_environments" in r]


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


@pytest.mark.parametrize("method", ["ce", "ifl", "lws", "lff"])
def test_two_processes_train_what_one_does(method, tiny_benchmark, tmp_path):
    # lws: a second, head-only stage (DDP over a partly frozen model); ifl: environments, scores and
    # centers merged across ranks; lff: a twin model and per-sample state shared across ranks
    args = ["train", "--benchmark", str(tiny_benchmark), "--method", method, *fast_overrides(3), *EXACT]
    if method == "ifl":
        # rebuilds after epochs 0 and 1 of 3: two epochs on environments with the center loss
        args += ["wrapper_args.rebuild_after=[10,40]", "wrapper_args.alpha_milestones=[10,40]"]
    one = _glt([*args, "--out", "one"], tmp_path)
    assert one.returncode == 0, one.stderr
    two = _torchrun([*args, "--out", "two"], 2, tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = tmp_path / "one", tmp_path / "two"
    if method == "ifl":
        # IFL's environments are a threshold rule over per-sample scores: first say whether both runs
        # built the same ones (a sample whose score crossed a threshold moves the weights by ~1e-3 later)
        rebuilds = _environments(a)
        assert len(rebuilds) == 2  # after epochs 0 and 1 of 3
        for ea, eb in zip(rebuilds, _environments(b), strict=True):
            for k, (xa, xb) in enumerate(zip(ea["environments"], eb["environments"], strict=True)):
                assert xa["effective_size"] == pytest.approx(xb["effective_size"], rel=1e-6), (
                    f"environment {k} rebuilt after epoch {ea['epoch']} differs between 1 and 2 processes "
                    f"(effective size {xa['effective_size']} vs {xb['effective_size']}): per-sample scores "
                    "crossed a threshold (docs/scaling.md)")
    # float32 sums in a different order: differences of order 1e-6 after a few dozen steps
    assert _max_diff(_weights(a), _weights(b)) < 1e-4
    for split in ("glt__test_cbl", "glt__test_gbl"):
        pa = np.loadtxt(a / "predictions" / f"{split}.csv", delimiter=",", skiprows=1, dtype=str)
        pb = np.loadtxt(b / "predictions" / f"{split}.csv", delimiter=",", skiprows=1, dtype=str)
        assert (pa == pb).all()
    # only rank 0 wrote: one line per epoch, no duplicates
    lines_a = (a / "metrics.jsonl").read_text().splitlines()
    lines_b = (b / "metrics.jsonl").read_text().splitlines()
    assert len(lines_a) == len(lines_b)


def test_batch_must_split_evenly(tiny_benchmark, tmp_path):
    r = _torchrun(["train", "--benchmark", str(tiny_benchmark), "--out", "x", *fast_overrides(1), "data.batch_size=15"],
                  2, tmp_path)
    assert r.returncode != 0
    assert "data.batch_size (15) is the global batch size" in r.stderr
    # torchrun reports its failed children with its own traceback; none may come from glt's code
    frames = [line for line in r.stderr.splitlines() if line.lstrip().startswith("File ")]
    assert not any("/glt/" in f for f in frames), r.stderr


@pytest.mark.slow
def test_two_processes_on_colordigits_within_seed_spread(tmp_path):
    """The embedded benchmark at its default settings (BatchNorm over each rank's half batch, random
    shifts): the 2-process run is a different random run of the same training, so it must land within
    the seed-to-seed spread of CE there: three standard deviations of CE's Test-GBL numbers over seeds
    0, 1, 2 (docs/results.md, measured with the code that trains as the original: std 2.13 accuracy,
    2.36 precision points; the earlier code's 1.6 gave the earlier 5-point tolerance)."""
    assert _glt(["build", "digits", "--out", "cd"], tmp_path).returncode == 0
    args = ["train", "--benchmark", "cd", "--method", "ce", "progress=false"]
    one = _glt([*args, "--out", "one"], tmp_path)
    assert one.returncode == 0, one.stderr
    two = _torchrun([*args, "--out", "two"], 2, tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    import json

    a = json.loads((tmp_path / "one" / "eval.json").read_text())["splits"]
    b = json.loads((tmp_path / "two" / "eval.json").read_text())["splits"]
    for split in ("glt/test_cbl", "glt/test_gbl"):
        assert abs(a[split]["accuracy"] - b[split]["accuracy"]) <= 3 * 0.0213, (split, a[split]["accuracy"],
                                                                               b[split]["accuracy"])
        assert abs(a[split]["precision"] - b[split]["precision"]) <= 3 * 0.0236
