"""The record of one trial (OUT/trials/<method>/<trial>/trial.json): what it trains (its overrides, its
search-space draw, its resolved config) and where it stands (queued / running / done / failed / pruned)."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from glt.errors import GLTError
from glt.io import read_json, write_json

STATUSES = ("queued", "running", "done", "failed", "pruned")
FINAL = ("done", "pruned")  # a re-run skips these; every other trial is (re)started and resumes its runs
from glt.runtime.layout import TRIAL_FILE, TRIALS


@dataclass
class TrialRecord:
    method: str
    trial: str  # "default" (--search none), "t000".. (random), "o000".. (optuna)
    benchmark: str
    seeds: list[int]
    search: str = "none"
    search_seed: int = 0
    draw: dict[str, Any] = field(default_factory=dict)  # the search-space values of this trial
    user_overrides: list[str] = field(default_factory=list)
    yaml_file: str | None = None
    preset: str | None = None
    runs: dict[str, str] = field(default_factory=dict)  # seed -> run folder, relative to the sweep folder
    status: str = "queued"
    error: str | None = None
    seeds_done: list[int] = field(default_factory=list)
    config: dict[str, Any] | None = None  # the resolved config of the first seed's glt track
    launcher: str | None = None
    job_id: str | None = None
    host: str | None = None
    pid: int | None = None
    updated: float | None = None
    pruned_step: int | None = None
    objective: float | None = None

    @property
    def overrides(self) -> list[str]:
        """The user's overrides, then the draw (so a drawn key wins), then per-epoch test scores for selection."""
        return [*self.user_overrides, *(f"{k}={_value(v)}" for k, v in sorted(self.draw.items())),
                "log_test_metrics=true"]

    def identity(self) -> dict[str, Any]:
        """What must match for a trial folder to be this trial (a re-run with other settings is refused)."""
        return {k: getattr(self, k) for k in ("method", "trial", "draw", "user_overrides", "yaml_file", "preset")}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "overrides": self.overrides}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrialRecord:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in known})


def _value(v: Any) -> str:
    """An override's value as OmegaConf's dotlist reads it back (floats in full precision)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def trial_dir(sweep: str | os.PathLike, method: str, trial: str) -> Path:
    return Path(sweep) / TRIALS / method / trial


def trial_file(sweep, method: str, trial: str) -> Path:
    return trial_dir(sweep, method, trial) / TRIAL_FILE


def load_trial(path: str | os.PathLike) -> TrialRecord:
    return TrialRecord.from_dict(read_json(path, "trial record"))


def save_trial(path: str | os.PathLike, rec: TrialRecord, **changes: Any) -> TrialRecord:
    """Write `rec` (with `changes` applied) atomically, stamped with this host, pid and the time."""
    for k, v in changes.items():
        setattr(rec, k, v)
    if rec.status not in STATUSES:
        raise ValueError(f"unknown trial status {rec.status}")
    rec.host, rec.pid, rec.updated = socket.gethostname(), os.getpid(), time.time()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json(path, rec.to_dict())
    return rec


def reconcile(path: Path, planned: TrialRecord) -> TrialRecord:
    """The record to start from: the planned one for a new trial, the stored one (status kept) for a trial
    the folder already holds, provided it is the same trial."""
    if not path.is_file():
        return planned
    stored = load_trial(path)
    if stored.identity() != planned.identity():
        raise GLTError(f"{path} holds another trial (its draw or overrides differ from this sweep's); use another "
                       "--out, or the --search-seed / settings it was started with")
    stored.seeds = planned.seeds
    stored.runs = planned.runs
    return stored


def all_trials(sweep: str | os.PathLike) -> list[tuple[Path, TrialRecord]]:
    root = Path(sweep) / TRIALS
    return [(p, load_trial(p)) for p in sorted(root.glob(f"*/*/{TRIAL_FILE}"))] if root.is_dir() else []


def is_alive(rec: TrialRecord) -> bool | None:
    """Whether the process that last wrote a running record is alive: None when it ran on another host."""
    if rec.host != socket.gethostname() or rec.pid is None:
        return None
    if rec.pid == os.getpid():  # written by this very process, which is not training it now (interrupted)
        return False
    try:
        os.kill(rec.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
