"""Writing a benchmark folder: under a temporary name marked as glt's, published with the user's umask.

Every builder and `glt import` write through `build_output(OUT)` (docs/build.md, "Output folders"):

- the folder is built as ``.OUT.<random>.partial`` next to OUT (glt.io.atomic_dir) and renamed to OUT
  at the end, so a failed build leaves nothing at OUT;
- the first file written into it is the marker ``.glt-partial.json`` (tool, OUT's name, host, pid and
  the process's start time). A build that is killed leaves the partial folder behind; the next build
  of the same OUT removes it, but only when the marker is there, names OUT, was written on this host
  and its process is gone. A look-alike folder without glt's marker, or one whose process still
  runs, is left alone;
- files and folders get the modes any other tool would give them: 0666 / 0777 less the umask
  (temporary files are created 0600 / 0700 by the tempfile module).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from glt.errors import GLTError
from glt.io import atomic_dir, dir_mode, file_mode

MARKER = ".glt-partial.json"
TOOL = "glt"


# ---- modes ------------------------------------------------------------------------------------------
def apply_modes(root: str | os.PathLike) -> None:
    """Give every file and folder under `root` (itself included; links are not followed) the umask
    modes. Only for folders glt wrote entirely itself."""
    fmode, dmode = file_mode(), dir_mode()
    root = Path(root)
    os.chmod(root, dmode)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, dmode)
        for name in filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if not os.path.islink(p) and (st.st_mode & 0o7777) != fmode:
                os.chmod(p, fmode)


# ---- the partial folder -------------------------------------------------------------------------------
def _start_time(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot; Linux), None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2 :].split()[19]  # field 22; the name in (...) may hold spaces
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    except (OSError, OverflowError, ValueError):
        return False
    if start is not None:
        now = _start_time(pid)
        if now is not None and now != start:  # the pid was reused by a later process
            return False
    return True


def partial_pattern(out: Path) -> tuple[str, str]:
    """Prefix and suffix of the partial folders of `out` (as glt.io.atomic_dir names them)."""
    return f".{out.name}.", ".partial"


def _marker(out: Path) -> dict:
    return {"tool": TOOL, "out": out.name, "host": socket.gethostname(), "pid": os.getpid(),
            "pid_start": _start_time(os.getpid()), "started": time.time()}


def read_marker(folder: Path) -> dict | None:
    try:
        doc = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) and doc.get("tool") == TOOL else None


def stale_partials(out: str | os.PathLike) -> list[Path]:
    """The partial folders of `out` left by glt builds whose process is gone (see the module docstring)."""
    out = Path(out)
    parent = out.parent
    prefix, suffix = partial_pattern(out)
    found = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return []
    host = socket.gethostname()
    for e in sorted(entries, key=lambda e: e.name):
        if not (e.name.startswith(prefix) and e.name.endswith(suffix) and len(e.name) > len(prefix) + len(suffix)):
            continue
        if e.is_symlink() or not e.is_dir(follow_symlinks=False):
            continue
        m = read_marker(Path(e.path))
        if m is None or m.get("out") != out.name or m.get("host") != host:
            continue
        pid = m.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            continue
        if _alive(pid, m.get("pid_start") if isinstance(m.get("pid_start"), str) else None):
            continue
        found.append(Path(e.path))
    return found


def remove_stale_partials(out: str | os.PathLike, log=None) -> list[Path]:
    """Remove what `stale_partials` finds; returns the folders removed."""
    removed = []
    for p in stale_partials(out):
        m = read_marker(p) or {}
        shutil.rmtree(p, ignore_errors=True)
        if not p.exists():
            removed.append(p)
            msg = f"removed {p}: the partial folder of an interrupted build (process {m.get('pid')} is gone)"
            (log or _log)(msg)
    return removed


def _log(msg: str) -> None:
    print(f"glt: {msg}", file=sys.stderr, flush=True)


def _check_overwrite(out: Path, overwrite: bool) -> None:
    """--overwrite replaces a benchmark folder (one with a glt manifest), never any other folder."""
    if not overwrite or not out.exists():
        return
    if out.is_symlink() or not out.is_dir():
        raise GLTError(f"output {out} exists and is not a folder; refusing to replace it")
    if not any(out.iterdir()):
        return
    manifest = out / "manifest.json"
    try:
        ok = json.loads(manifest.read_text()).get("format") == "glt-benchmark"
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        ok = False
    if not ok:
        raise GLTError(
            f"output folder {out} is not a glt benchmark (no glt {manifest.name}); --overwrite only replaces "
            "a benchmark folder: choose another --out or remove it yourself"
        )


@contextlib.contextmanager
def build_output(out: str | os.PathLike, overwrite: bool = False, log=None) -> Iterator[Path]:
    """Yield the partial folder to build `out` in; on success publish it at `out` (umask modes).

    Stale partial folders of `out` (interrupted earlier builds, recognised by glt's marker) are
    removed once this build has started."""
    out = Path(out)
    _check_overwrite(out, overwrite)
    with atomic_dir(out, overwrite) as tmp:
        (tmp / MARKER).write_text(json.dumps(_marker(out)))  # first: the folder is glt's from here on
        remove_stale_partials(out, log)
        yield tmp
        (tmp / MARKER).unlink()
        apply_modes(tmp)
