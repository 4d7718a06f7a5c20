"""Checks of an output path before anything is written: not a file where a folder is expected (or the
reverse), not under a file, writable."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from glt.errors import GLTError, first_line


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
