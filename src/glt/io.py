"""Atomic file and directory writes: nothing half-written is left where a later run would trust it."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from glt.errors import GLTError


_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux: /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:  # elsewhere the only way is to set it and put it back
        old = os.umask(0o022)
        os.umask(old)
    return old


def file_mode() -> int:
    """The mode a plain `open()` gives a new file: 0666 less the umask (mkstemp's files are 0600)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """The mode a plain `mkdir()` gives a new folder: 0777 less the umask (mkdtemp's are 0700)."""
    return 0o777 & ~current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, file_mode())
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def strict_json(obj: Any) -> Any:
    """NaN / inf (an empty group's metrics) become null: strict JSON that any tool can read."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(strict_json(obj), indent=2, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise GLTError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GLTError(f"malformed {what} {path}: {e}") from None


@contextlib.contextmanager
def atomic_dir(out: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory under a temporary name, then rename it to `out`.

    An existing non-empty `out` is refused unless `overwrite`; a failed build leaves nothing at `out`.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise GLTError(f"output folder {out} already exists and is not empty (use --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    os.chmod(tmp, dir_mode())
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def existing_files(paths: Sequence[str]) -> np.ndarray:
    """Which paths are files: one listing per folder rather than one stat per image (ImageNet-GLT:
    1,000 folders for ~470,000 images; much faster on network file systems too)."""
    parts = [p.rpartition(os.sep) for p in paths]  # str.rpartition: ~5x faster than os.path.split
    listing: dict[str, set[str]] = {}
    folders = dict.fromkeys(d if sep else "." for d, sep, _ in parts)
    for d in tqdm(folders, desc="checking images", unit="folder", disable=None, leave=False):
        try:
            with os.scandir(d or os.sep) as entries:
                listing[d] = {e.name for e in entries if e.is_file()}
        except OSError:  # no such folder, not a folder, not readable: its images are missing
            listing[d] = set()
    return np.fromiter((b in listing[d if sep else "."] for d, sep, b in parts), bool, len(parts))
