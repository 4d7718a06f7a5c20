"""What glt wrote in a folder: the files of a layout (glt.runtime.layout), found, checked and removed,
so that `--overwrite` never deletes a file of the user's."""

from __future__ import annotations

import os
from fnmatch import fnmatchcase
from pathlib import Path

from glt.errors import GLTError
from glt.runtime.layout import LOCK
from glt.runtime.output_paths import check_output_folder


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
