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
