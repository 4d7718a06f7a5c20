"""A training folder (its files: glt.runtime.layout; metrics.jsonl is strict JSON, NaN / inf written as
null; the lock, glt.runtime.lock, is an fcntl.flock on a file holding the training's pid).

The rules of the folder (RunDir.prepare), so that no user file is ever lost:

- a training holds the lock for its whole life, so a second training into the same folder is refused
  (naming the pid of the first); a lock file left by a killed process is taken over;
- `--overwrite` removes only the files glt writes (the layout above); a folder holding any other file
  is refused, naming it, and nothing is deleted;
- `--resume` never deletes: it continues from last.pt, or starts over in place when the run stopped
  before its first checkpoint;
- a run that stopped before its first checkpoint (a bad setting found once training started, a kill in
  the first epoch) holds nothing worth keeping: a new training into the folder is accepted, whatever
  its config, and the CLI removes such a run's files when it fails (`finish_claim`).

Output paths are checked by glt.runtime.output_paths, the layouts of the other folders glt writes (a
`glt run` folder, a sweep, the demo) by glt.runtime.owned_files; both are re-exported here.
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from glt.errors import GLTError, first_line
from glt.io import strict_json, write_text
from glt.runtime.layout import (  # noqa: F401  (the layouts callers import from here)
    BEST,
    CONFIG,
    DEMO_LAYOUT,
    DIGITS_LAYOUT,
    EVAL,
    LAST,
    LOCK,
    METRICS,
    PROTOCOL_LAYOUT,
    REPORT_LAYOUT,
    RUN_LAYOUT,
    SWEEP_LAYOUT,
    TEMP,
    TENSORBOARD,
    TRACKS,
    predictions_file,
)
from glt.runtime.lock import RunLock, lock_holder
from glt.runtime.output_paths import check_output_file, check_output_folder  # noqa: F401
from glt.runtime.owned_files import (  # noqa: F401
    check_layout_folder,
    refuse_foreign,
    remove_layout,
    scan_layout,
)


class _Claim:
    """What a process did to claim a run folder: its lock, the outcome of `prepare`, the folders it created."""

    def __init__(self, lock: RunLock, status: str, created: Path | None):
        self.lock, self.status, self.created = lock, status, created


_CLAIMS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # run folder -> _Claim of this process


def _make_folder(root: Path) -> Path | None:
    """mkdir -p; returns the topmost folder it created (None if `root` existed)."""
    top = None
    a = root
    while not a.exists():
        top = a
        a = a.parent
    root.mkdir(parents=True, exist_ok=True)
    return top


def _remove_created(created: Path | None, root: Path) -> None:
    """Remove the folders `_make_folder` created, where they are empty."""
    if created is None:
        return
    a = root
    while True:
        try:
            a.rmdir()
        except OSError:
            return
        if a == created:
            return
        a = a.parent


def finish_claim(root: str | os.PathLike, failed: bool) -> None:
    """After a training in this process: release its lock; if it failed before its first checkpoint
    (a new run, no last.pt), remove the files it wrote and the folders it created, so nothing is left
    half-written. A resumed run's files are never removed."""
    root = Path(root)
    claim = _CLAIMS.get(os.path.realpath(root))
    if claim is None:
        return
    try:
        run = RunDir(root)
        if failed and claim.status == "new" and not run.last.is_file():
            remove_layout(root, RUN_LAYOUT)
    finally:
        claim.lock.release()
        if failed and claim.status == "new":
            _remove_created(claim.created, root)


# ---- the run folder ---------------------------------------------------------------------------------------


def _same_but_relative(stored: str, text: str) -> bool:
    """A config.yaml written before configs stored data.benchmark as an absolute path: the same run if it
    names the same benchmark relative to the current directory (so such a run is still resumed)."""
    try:
        old = OmegaConf.create(stored)
        bench = OmegaConf.select(old, "data.benchmark", default=None)
        if not isinstance(bench, str) or os.path.isabs(bench):
            return False
        old.data.benchmark = os.path.abspath(bench)
        return OmegaConf.to_yaml(old) == text
    except Exception:  # not YAML, not a mapping: not the same run
        return False



class RunDir:
    """A training folder (its file names: glt.runtime.layout)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._claim: _Claim | None = None

    config = property(lambda self: self.root / CONFIG)
    metrics = property(lambda self: self.root / METRICS)
    last = property(lambda self: self.root / LAST)
    best = property(lambda self: self.root / BEST)
    eval = property(lambda self: self.root / EVAL)
    tensorboard = property(lambda self: self.root / TENSORBOARD)

    def predictions(self, split: str) -> Path:
        return self.root / predictions_file(split)

    @property
    def complete(self) -> bool:
        return self.eval.is_file()

    def load_config(self, validate: Callable[..., Any] | None = None):
        """The run's config.yaml; `validate(cfg, source=...)` (glt.config.validate_config, passed in by
        the caller: the runtime layer knows no config schema) checks it and returns it."""
        if self.root.exists() and not self.root.is_dir():
            raise GLTError(f"{self.root} is a file, not a run folder")
        if not self.config.is_file():
            raise GLTError(f"{self.root} is not a run folder (no config.yaml)")
        try:
            cfg = OmegaConf.load(self.config)
        except Exception as e:
            raise GLTError(f"malformed run config {self.config}: {first_line(e)}") from None
        if not OmegaConf.is_dict(cfg):
            raise GLTError(f"malformed run config {self.config}: expected a mapping")
        return validate(cfg, source=str(self.config)) if validate is not None else cfg

    def _decide(self, text: str, resume: bool, overwrite: bool) -> str:
        """What `prepare` does with the folder as it is now: 'new', 'overwrite', 'resume' or 'complete'
        (or a GLTError). Reads only."""
        root = self.root
        if not root.exists():
            return "new"
        ours, others = scan_layout(root, RUN_LAYOUT)
        if overwrite:
            refuse_foreign(root, others)
            return "overwrite"
        if not self.config.is_file():
            return self._decide_without_config(ours, others)
        return self._decide_stored(text, resume)

    def _decide_without_config(self, ours: list[str], others: list[str]) -> str:
        """A folder without config.yaml: new, if it holds nothing but a lock or temporary files."""
        if others:
            raise GLTError(f"output folder {self.root} is not empty and holds no run: {others[0]} was not written "
                           "by glt; use another --out")
        if any(not (r == LOCK or fnmatchcase(r, TEMP)) for r in ours):
            raise GLTError(f"output folder {self.root} is not empty and holds no run (no {CONFIG}); use "
                           "--overwrite to replace it")
        return "new"

    def _decide_stored(self, text: str, resume: bool) -> str:
        """A folder holding a run: complete, resumable, or one that stopped before its first checkpoint."""
        root = self.root
        try:
            stored = self.config.read_text(errors="replace")
        except OSError as e:
            raise GLTError(f"cannot read {self.config}: {e.strerror}") from None
        same = stored == text or _same_but_relative(stored, text)
        different = GLTError(f"output folder {root} holds a different run (its config.yaml differs); use another "
                             "--out, or --overwrite")
        if self.complete:
            if same:
                return "complete"
            raise different
        if self.last.is_file():
            if not same:
                raise different
            if resume:
                return "resume"
            raise GLTError(f"output folder {root} holds an unfinished run: use --resume to continue it, or --overwrite")
        return "new"  # stopped before its first checkpoint: nothing to keep, start over in place

    def prepare(self, cfg, resume: bool, overwrite: bool) -> str:
        """Claim the folder for `cfg` (see the module docstring). Returns 'new', 'resume' or 'complete'.
        Everything is checked before anything is written; the lock is held until `release()` (or until
        this RunDir is collected, or the process ends)."""
        text = OmegaConf.to_yaml(cfg)
        check_output_folder(self.root)
        holder = lock_holder(self.root)
        if holder is not None:
            raise GLTError(f"output folder {self.root} is in use by another glt training (pid {holder}; lock "
                           f"file {self.root / LOCK})")
        self._decide(text, resume, overwrite)  # refuse before the first write (the lock file)
        created = _make_folder(self.root)
        lock = None
        try:
            lock = RunLock(self.root)
            status = self._decide(text, resume, overwrite)  # again, now that no other training can change it
            if status == "overwrite":
                remove_layout(self.root, RUN_LAYOUT)
            if status in ("new", "overwrite"):
                status = "new"
                self.metrics.unlink(missing_ok=True)  # the lines of a run that stopped before its first checkpoint
                write_text(self.config, text)
        except BaseException:
            if lock is not None:
                lock.release()
            _remove_created(created, self.root)
            raise
        self._claim = _Claim(lock, status, created)
        _CLAIMS[os.path.realpath(self.root)] = self._claim
        return status

    def release(self) -> None:
        """Release the lock taken by `prepare` (the files stay)."""
        if self._claim is not None:
            self._claim.lock.release()

    def log(self, record: dict) -> None:
        with self.metrics.open("a") as f:
            f.write(json.dumps(strict_json(record), allow_nan=False) + "\n")

    def truncate_log(self, stage: int, epoch: int) -> None:
        """On resume, drop lines logged after the checkpoint (an epoch killed after its line was written)."""
        if not self.metrics.is_file():
            return
        keep = []
        for line in self.metrics.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill: its epoch is trained again
                continue
            if (rec["stage_index"], rec["epoch"]) < (stage, epoch):
                keep.append(line)
        write_text(self.metrics, "".join(k + "\n" for k in keep))


@dataclass
class FinishedRun:
    """What a later run takes from a finished one (a decoupled second stage from its first stage): the
    best checkpoint's model weights and the run's config."""

    path: Path  # the checkpoint file, for messages
    model_state: dict
    config: Any


def load_finished_run(root: str | os.PathLike, validate: Callable[..., Any] | None = None) -> FinishedRun:
    """The best checkpoint and config of the finished run folder `root` (GLTError naming what is missing);
    `validate` checks the config (see RunDir.load_config)."""
    from glt.runtime.checkpoint import load_checkpoint

    run = RunDir(root)
    if not run.best.is_file():
        raise GLTError(f"{run.best} not found (expected the folder of a finished run)")
    state = load_checkpoint(run.best)
    try:
        config = run.load_config(validate)
    except GLTError:  # an old or hand-made folder: the weights alone
        config = None
    return FinishedRun(run.best, dict(state.get("model", {})), config)
