"""A run's output folder:

    config.yaml        the resolved config
    metrics.jsonl      one JSON line per epoch (strict JSON: NaN / inf are written as null)
    checkpoints/       last.pt (resume), best.pt (best validation accuracy)
    predictions/       <split>.csv  (id,prediction) for each test split of the track
    eval.json          metrics of each test split; its presence marks the run complete
    .glt.lock          while a training runs: its lock (fcntl.flock), holding its pid

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

The same module checks output paths (`check_output_folder`, `check_output_file`) and the layouts of
the other folders glt writes (a `glt run` folder, a sweep, the demo), for the commands' --overwrite.
"""

from __future__ import annotations

import json
import os
import tempfile
import weakref
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from glt.errors import GLTError, first_line
from glt.io import strict_json, write_text

try:
    import fcntl
except ImportError:  # not POSIX: no lock (the folder rules still apply)
    fcntl = None

LOCK = ".glt.lock"

# files glt writes, as patterns of their path relative to the folder (fnmatch: `*` also matches `/`)
TEMP = ".*.tmp"  # glt.io.atomic_path's temporary files, left behind by a kill
RUN_LAYOUT = (
    "config.yaml", "metrics.jsonl", "eval.json", LOCK, TEMP,
    "checkpoints/*.pt", f"checkpoints/{TEMP}", "predictions/*.csv", f"predictions/{TEMP}", "tensorboard/*",
)
TRACKS = ("glt", "cbl")
PROTOCOL_LAYOUT = ("results.json", TEMP, *(f"{t}/{p}" for t in TRACKS for p in RUN_LAYOUT))  # `glt run`
REPORT_LAYOUT = ("results.json", "results.md", "results.csv", "results.tex", TEMP, "figures/*")
SWEEP_LAYOUT = (*REPORT_LAYOUT, *(f"runs/*/seed*/{p}" for p in PROTOCOL_LAYOUT))
# the demo's benchmark: `glt build digits` (+ `glt cache`)
DIGITS_LAYOUT = ("manifest.json", "splits/*", "images/*", "arrays/*", "cache/*", TEMP)
DEMO_LAYOUT = (*SWEEP_LAYOUT, *(f"benchmark/{p}" for p in DIGITS_LAYOUT))


# ---- output paths -----------------------------------------------------------------------------------------


def _writable(folder: Path, what: str, target: Path) -> None:
    """`folder` (or its nearest existing ancestor) is a folder this process can create files in."""
    a = folder
    while not os.path.lexists(a) and a != a.parent:
        a = a.parent
    if not a.is_dir():
        raise GLTError(f"{what} {target}: {a} is a file, not a folder")
    try:  # the only reliable test (read-only mounts, /proc, /sys, permissions): create and remove a folder
        os.rmdir(tempfile.mkdtemp(prefix=".glt-write-check-", dir=a))
    except OSError as e:
        raise GLTError(f"{what} {target}: cannot write in {a} ({e.strerror or first_line(e)})") from None


def check_output_folder(path: str | os.PathLike, what: str = "--out") -> Path:
    """Refuse an output folder that is a file, lies under a file, or cannot be written; writes nothing."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise GLTError(f"{what} {p} is a file, not a folder")
    _writable(p, what, p)
    return p


def check_output_file(path: str | os.PathLike, what: str = "--out") -> Path:
    """Refuse an output file that is a folder, lies under a file, or cannot be written; writes nothing."""
    p = Path(path)
    if p.is_dir():
        raise GLTError(f"{what} {p} is a folder, not a file")
    _writable(p.parent, what, p)
    return p


# ---- what glt wrote ---------------------------------------------------------------------------------------


def _folder_patterns(layout: tuple[str, ...]) -> list[str]:
    """Patterns of the folders a layout's files live in ("checkpoints", "runs/*/seed*/glt", ...)."""
    out = []
    for pat in layout:
        parts = pat.split("/")
        out += ["/".join(parts[:i]) for i in range(1, len(parts))]
    return out


def scan_layout(root: str | os.PathLike, layout: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(files of `layout`, other entries) under `root`, as relative paths; an empty folder that is not
    one of the layout's counts as another entry, links are never followed."""
    root = Path(root)
    folders = _folder_patterns(layout)
    ours, others = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = [d for d in dirnames if d not in links]
        for name in sorted(filenames + links):
            rel = prefix + name
            (ours if any(fnmatchcase(rel, p) for p in layout) else others).append(rel)
        if prefix and not filenames and not dirnames and not links:  # an empty folder
            rel = prefix[:-1]
            if not any(fnmatchcase(rel, p) for p in (*folders, *layout)):
                others.append(rel + "/")
    return ours, others


def remove_layout(root: str | os.PathLike, layout: tuple[str, ...], keep: tuple[str, ...] = (LOCK,)) -> None:
    """Delete the files of `layout` under `root` (not those in `keep`), then the folders left empty.
    Callers first check with `scan_layout` that `root` holds nothing else."""
    root = Path(root)
    ours, _ = scan_layout(root, layout)
    for rel in ours:
        if rel not in keep:
            (root / rel).unlink(missing_ok=True)
    folders = (*_folder_patterns(layout), *layout)
    for dirpath, _, _ in sorted(os.walk(root), key=lambda w: -len(w[0])):
        rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
        if rel != "." and any(fnmatchcase(rel, p) for p in folders):
            try:
                os.rmdir(dirpath)
            except OSError:  # not empty: it holds something kept
                pass


def refuse_foreign(root: Path, others: list[str]) -> None:
    if others:
        raise GLTError(
            f"output folder {root} holds {others[0]}"
            + (f" (and {len(others) - 1} more)" if len(others) > 1 else "")
            + ", which glt did not write; --overwrite removes only what glt wrote: move it away or use another --out"
        )


def check_layout_folder(out: Path, layout: tuple[str, ...], what: str, overwrite: bool = False) -> None:
    """An output folder of `layout` (a `glt run`, a sweep, the demo), checked before anything is written:
    with --overwrite, one holding files glt did not write is refused (naming one); without, a non-empty
    folder that holds nothing of `layout` is refused."""
    check_output_folder(out)
    if not out.is_dir():
        return
    ours, others = scan_layout(out, layout)
    if overwrite:
        refuse_foreign(out, others)
    elif others and not ours:
        raise GLTError(f"output folder {out} is not empty and holds no glt {what}: {others[0]} was not written by "
                       "glt; use another --out")


# ---- the lock ---------------------------------------------------------------------------------------------

_HELD: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # lock path -> RunLock of this process


def _unlock(f, path: str) -> None:
    try:
        if os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
            os.unlink(path)  # while still holding it: a waiting opener sees another inode and retries
    except OSError:
        pass
    finally:
        f.close()


def lock_holder(folder: str | os.PathLike) -> str | None:
    """The pid (as written in the lock file) of another live process holding `folder`'s lock, else None."""
    path = Path(folder) / LOCK
    if fcntl is None or os.path.realpath(path) in _HELD or not path.is_file():
        return None
    try:
        with open(path) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return f.read().strip() or "?"
            fcntl.flock(f, fcntl.LOCK_UN)
    except OSError:
        return None
    return None


class RunLock:
    """An exclusive fcntl.flock on FOLDER/.glt.lock, which holds this process's pid. The kernel drops
    the lock when the process ends, however it ends, so a lock file left by a killed training is simply
    taken over. Released by `release()` or when the object is collected (the file is removed then).
    Within one process trainings run one after another: an earlier holder of the same folder (a training
    that ended with an exception still referenced by a traceback) is released first."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        key = os.path.realpath(self.path)
        old = _HELD.get(key)
        if old is not None:
            old.release()
        self._finalizer = None
        if fcntl is None:
            return
        while True:
            f = open(self.path, "a+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                pid = f.read().strip() or "?"
                f.close()
                raise GLTError(f"output folder {self.folder} is in use by another glt training (pid {pid}; "
                               f"lock file {self.path})") from None
            try:  # the holder may have removed the file between our open and flock: lock the new one
                same = os.stat(self.path).st_ino == os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            f.close()
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._finalizer = weakref.finalize(self, _unlock, f, str(self.path))
        _HELD[key] = self

    def release(self) -> None:
        if self._finalizer is not None:
            self._finalizer()


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
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._claim: _Claim | None = None

    config = property(lambda self: self.root / "config.yaml")
    metrics = property(lambda self: self.root / "metrics.jsonl")
    last = property(lambda self: self.root / "checkpoints" / "last.pt")
    best = property(lambda self: self.root / "checkpoints" / "best.pt")
    eval = property(lambda self: self.root / "eval.json")

    def predictions(self, split: str) -> Path:
        return self.root / "predictions" / (split.replace("/", "__") + ".csv")

    @property
    def complete(self) -> bool:
        return self.eval.is_file()

    def load_config(self):
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
        from glt.config import validate_config

        return validate_config(cfg, source=str(self.config))

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
            if others:
                raise GLTError(f"output folder {root} is not empty and holds no run: {others[0]} was not written "
                               "by glt; use another --out")
            if any(not (r == LOCK or fnmatchcase(r, TEMP)) for r in ours):
                raise GLTError(f"output folder {root} is not empty and holds no run (no config.yaml); use "
                               "--overwrite to replace it")
            return "new"
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


def load_finished_run(root: str | os.PathLike) -> FinishedRun:
    """The best checkpoint and config of the finished run folder `root` (GLTError naming what is missing)."""
    from glt.runtime.checkpoint import load_checkpoint

    run = RunDir(root)
    if not run.best.is_file():
        raise GLTError(f"{run.best} not found (expected the folder of a finished run)")
    state = load_checkpoint(run.best)
    try:
        config = run.load_config()
    except GLTError:  # an old or hand-made folder: the weights alone
        config = None
    return FinishedRun(run.best, dict(state.get("model", {})), config)
