"""A sweep from start to end: plan its trials, record them, start them through a launcher, summarise."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from glt.errors import GLTError
from glt.io import write_json
from glt.runtime.layout import SLURM, SWEEP_FILE
from glt.sweeps.folder import check_sweep_out
from glt.sweeps.launchers import LAUNCHERS, LaunchOptions
from glt.sweeps.plan import plan_trials
from glt.sweeps.records import (
    FINAL,
    STATUSES,
    all_trials,
    is_alive,
    reconcile,
    save_trial,
    trial_file,
)


@dataclass
class SweepSettings:
    benchmark: str
    methods: list[str]
    seeds: list[int]
    out: Path
    overrides: list[str] = field(default_factory=list)
    yaml_file: str | None = None
    preset: str | None = None
    search: str = "none"
    trials: int = 1
    search_seed: int = 0

    def record_settings(self) -> dict:
        return {"benchmark": self.benchmark, "seeds": self.seeds, "overrides": list(self.overrides),
                "yaml_file": self.yaml_file, "preset": self.preset, "search_seed": self.search_seed}


def check_trials(records) -> None:
    """Every trial's config resolves (a draw out of a setting's range is named before anything trains)."""
    from glt.config import build_config

    for rec in records:
        try:
            build_config(method=rec.method, benchmark=rec.benchmark, yaml_file=rec.yaml_file, preset=rec.preset,
                         overrides=[*rec.overrides, f"seed={rec.seeds[0]}"])
        except GLTError as e:
            raise GLTError(f"trial {rec.method}/{rec.trial}: {e}") from None


def prepare(s: SweepSettings) -> list[Path]:
    """Write (or take up) every planned trial's record; returns the records to start: not finished and not
    being trained by a live process."""
    if s.search not in ("none", "random"):
        raise GLTError(f"--search {s.search} is not planned ahead")
    if s.search != "none" and s.trials < 1:
        raise GLTError(f"--trials must be at least 1, not {s.trials}")
    planned = plan_trials(s.out, s.methods, s.record_settings(), s.search, s.trials)
    check_trials(planned)
    check_sweep_out(s.out)
    write_json(s.out / SWEEP_FILE, {"search": s.search, "trials": s.trials, "methods": s.methods,
                                    **s.record_settings(), "started": time.time()})
    todo = []
    for rec in planned:
        path = trial_file(s.out, rec.method, rec.trial)
        rec = reconcile(path, rec)
        if rec.status in FINAL:
            continue
        if rec.status == "running" and is_alive(rec) is not False and not _job_ended(s.out, path):
            print(f"{rec.method}/{rec.trial}: running in process {rec.pid} on {rec.host}; left to it")
            continue
        save_trial(path, rec, status="queued")
        todo.append(path)
    return todo


def _job_ended(out: Path, path: Path) -> bool:
    """A trial recorded as running by a Slurm job that has ended (timed out, cancelled, its node failed)."""
    from glt.io import read_json
    from glt.sweeps.launchers import JOBS_FILE

    if not (out / JOBS_FILE).is_file():
        return False
    job = read_json(out / JOBS_FILE, "job list").get(str(path.resolve().relative_to(out.resolve())))
    if job is None:
        return False
    from glt.sweeps.slurm_job import job_ended

    return job_ended(out / SLURM, job)


def run_sweep(s: SweepSettings, launcher: str = "local", opts: LaunchOptions | None = None, **optuna_args) -> Counter:
    """Train every trial (skipping finished ones, resuming the others); returns the count of each status."""
    opts = opts or LaunchOptions()
    if s.search == "optuna":
        if launcher != "local":
            raise GLTError(f"--search optuna runs with --launcher local (start the same command on several "
                           f"machines, or in several Slurm jobs, with one --storage to share the study), not {launcher}")
        from glt.sweeps.optuna_search import optuna_sweep

        optuna_sweep(s, opts, **optuna_args)
    else:
        launch = LAUNCHERS.get(launcher)
        launch(prepare(s), opts)
    return status_counts(s.out)


def status_counts(out: Path) -> Counter:
    return Counter(rec.status for _, rec in all_trials(out))


def summary_line(counts: Counter) -> str:
    total = sum(counts.values())
    return f"{total} trial(s): " + ", ".join(f"{counts.get(k, 0)} {k}" for k in STATUSES)
