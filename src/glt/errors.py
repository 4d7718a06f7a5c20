"""Errors a user can cause. The CLI prints them as one line and exits with status 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GLTError(Exception):
    """A problem with the user's input (path, file, key, name): reported without a traceback."""


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> GLTError:
    """An error for an unknown registry name / config key, suggesting the closest known ones."""
    choices = sorted(choices)
    near = closest(name, choices)
    hint = f"; did you mean {', '.join(near)}?" if near else f"; known: {', '.join(choices)}"
    return GLTError(f"unknown {kind} '{name}'{hint}")


def first_line(e: BaseException) -> str:
    """The first line of an exception's message, or its type name when the message is empty
    (EOFError() from a zero-byte file has none)."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def os_error_message(e: OSError) -> str:
    """One line for an OSError (full disk, read-only file system, a file where a folder should be...),
    naming the path."""
    reason = e.strerror or first_line(e)
    paths = [str(p) for p in (e.filename, e.filename2) if p not in (None, "")]
    return f"{reason}: {' -> '.join(paths)}" if paths else reason
