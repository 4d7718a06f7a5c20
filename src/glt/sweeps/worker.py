"""Train one trial: every seed of it (`glt run --resume` each), its record kept up to date. Run in-process by
the local launcher, as `python -m glt.sweeps.worker TRIAL_JSON` by the others (under torchrun on every rank;
rank 0 writes the record). A failure is recorded with its error line, never raised: the sweep goes on."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

from glt.errors import first_line
from glt.sweeps.records import load_trial, save_trial


def sweep_root(trial_json: str | os.PathLike) -> Path:
    """OUT of OUT/trials/<method>/<trial>/trial.json."""
    return Path(trial_json).resolve().parents[3]


def _main_rank() -> bool:
    return int(os.environ.get("RANK", "0") or 0) == 0


def resolved_config(rec) -> dict:
    from omegaconf import OmegaConf

    from glt.config import build_config

    cfg = build_config(method=rec.method, benchmark=rec.benchmark, yaml_file=rec.yaml_file, preset=rec.preset,
                       overrides=[*rec.overrides, f"seed={rec.seeds[0]}", "data.track=glt"])
    return OmegaConf.to_container(cfg, resolve=True)


def run_trial(trial_json: str | os.PathLike) -> str:
    """Train the trial's seeds one after another; returns its final status ('done' or 'failed')."""
    from glt.experiment import run_protocols

    path = Path(trial_json)
    root = sweep_root(path)
    rec = load_trial(path)
    main = _main_rank()
    try:
        if main:
            save_trial(path, rec, status="running", error=None, config=resolved_config(rec))
        for seed in rec.seeds:
            run_protocols(rec.benchmark, rec.method, root / rec.runs[str(seed)], seed=seed,
                          overrides=rec.overrides, yaml_file=rec.yaml_file, preset=rec.preset, resume=True)
            if main and seed not in rec.seeds_done:
                save_trial(path, rec, seeds_done=[*rec.seeds_done, seed])
    except KeyboardInterrupt:
        raise
    except Exception as e:  # a GLTError, a NaN loss, CUDA out of memory...: recorded, the sweep goes on
        if main:
            save_trial(path, rec, status="failed", error=f"{type(e).__name__}: {first_line(e)}")
        traceback.print_exc(file=sys.stderr)
        return "failed"
    if main:
        save_trial(path, rec, status="done", error=None)
    return "done"


def run_trial_job(trial_json: str, nproc: int = 1) -> str:
    """A Slurm job's function (submitit pickles it by name): the trial in this process, or under torchrun
    with `nproc` processes (the GPUs of the job)."""
    if nproc <= 1:
        return run_trial(trial_json)
    import subprocess

    return mark_exit(trial_json, subprocess.call(trial_command(trial_json, nproc)))


def mark_exit(trial_json: str | os.PathLike, rc: int) -> str:
    """After a trial's process ended: its status, recording a process that died before it could (killed,
    out of memory) as failed."""
    rec = load_trial(trial_json)
    if rc != 0 and rec.status in ("queued", "running"):
        save_trial(trial_json, rec, status="failed", error=f"the trial's process exited with status {rc}")
    return rec.status


def trial_command(trial_json: str | os.PathLike, nproc: int = 1, torchrun: bool | None = None) -> list[str]:
    """The command that trains one trial in its own process(es): under torchrun when asked (default: with
    more than one process)."""
    if torchrun or (torchrun is None and nproc > 1):
        return ["torchrun", "--standalone", f"--nproc-per-node={nproc}", "-m", "glt.sweeps.worker", str(trial_json)]
    return [sys.executable, "-m", "glt.sweeps.worker", str(trial_json)]


if __name__ == "__main__":
    sys.exit(0 if run_trial(sys.argv[1]) == "done" else 1)
