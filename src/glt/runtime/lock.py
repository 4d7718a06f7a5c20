"""The lock of a training folder: one training at a time writes into it."""

from __future__ import annotations

import os
import weakref
from pathlib import Path

from glt.errors import GLTError
from glt.runtime.layout import LOCK

try:
    import fcntl
except ImportError:  # not POSIX: no lock (the folder rules still apply)
    fcntl = None

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
