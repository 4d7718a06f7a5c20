"""Resuming inside an epoch: a run stopped at any step and resumed with --resume ends with exactly the
predictions of the run that was never stopped (CPU, deterministic settings)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import fast_overrides
from glt.config import build_config
from glt.engine.trainer import Setup, train

IFL_EARLY = ["wrapper_args.rebuild_after=[10,40]", "wrapper_args.alpha_milestones=[10,40]"]


def _predictions(run) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((run / "predictions").glob("*.csv"))}


def _same_weights(a, b) -> bool:
    """Bit-identical final weights (a stronger check than predictions on an easy benchmark)."""
    wa = torch.load(a / "checkpoints" / "last.pt", weights_only=True)
    wb = torch.load(b / "checkpoints" / "last.pt", weights_only=True)
    return all(torch.equal(wa[part][k], wb[part][k]) for part in ("model", "extra") for k in wa[part])


@pytest.mark.parametrize("method, stop_at", [("blsoftmax", 7), ("mixup", 10), ("ifl", 12), ("crt", 22)])
def test_stopped_mid_epoch_resumes_to_the_same_predictions(method, stop_at, tiny_benchmark, tmp_path):
    # mixup draws from the global RNG every step; ifl keeps per-sample scores of the epoch so far;
    # crt is stopped in its second (classifier) stage. 75 images, batch 16: 4 steps an epoch.
    extra = IFL_EARLY if method == "ifl" else []
    cfg = build_config(method=method, benchmark=str(tiny_benchmark),
                       overrides=fast_overrides(4) + ["checkpoint_every=1", "deterministic=true", *extra])
    full = train(cfg, tmp_path / "full")

    cls = type(Setup(cfg).method)
    original = cls.after_step
    calls = [0]

    def stop(self):
        calls[0] += 1
        if calls[0] == stop_at:
            raise KeyboardInterrupt
        return original(self)

    cls.after_step = stop
    try:
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "part")
    finally:
        cls.after_step = original
    ckpt = torch.load(tmp_path / "part" / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["step"] > 0  # the resume starts inside an epoch
    assert ckpt["stage_index"] == (1 if method == "crt" else 0)
    with (tmp_path / "part" / "metrics.jsonl").open("a") as f:
        f.write('{"stage": "main", "stage_in')  # a line cut short by a kill while it was written
    resumed = train(cfg, tmp_path / "part", resume=True)
    epochs = lambda run: [(r["stage_index"], r["epoch"]) for r in map(json.loads, (run / "metrics.jsonl").open())]  # noqa: E731
    assert epochs(tmp_path / "part") == epochs(tmp_path / "full")
    assert _predictions(tmp_path / "part") == _predictions(tmp_path / "full")
    assert _same_weights(tmp_path / "part", tmp_path / "full")
    assert _same_weights(tmp_path / "part", tmp_path / "full")
    assert json.dumps(resumed, sort_keys=True) == json.dumps(full, sort_keys=True)  # NaN-tolerant


def test_kill_9_then_resume_matches_uninterrupted(tiny_benchmark, tmp_path):
    args = ["train", "--benchmark", str(tiny_benchmark), "--method", "ifl", *fast_overrides(4), *IFL_EARLY,
            "data.batch_size=8", "checkpoint_every=1", "deterministic=true", "threads=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = lambda *extra: subprocess.run([sys.executable, "-m", "glt", *args, *extra], cwd=tmp_path, env=env,  # noqa: E731
                                        capture_output=True, text=True, timeout=600)
    assert run("--out", "full").returncode == 0

    proc = subprocess.Popen([sys.executable, "-m", "glt", *args, "--out", "part"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "part" / "checkpoints" / "last.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        # kill as soon as the run has trained into its second epoch: wherever that lands, resume must be exact
        if last.is_file() and (tmp_path / "part" / "metrics.jsonl").is_file():
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "part" / "eval.json").exists()
    r = run("--out", "part", "--resume")
    assert r.returncode == 0, r.stderr
    assert _predictions(tmp_path / "part") == _predictions(tmp_path / "full")
    assert _same_weights(tmp_path / "part", tmp_path / "full")
