"""A frozen-feature store on disk, and its reader.

    OUT/store.json                         the record: backbone, weights, transform, feature size, splits
    OUT/<track>/<split>.npy                (N, D) float16, one row per split row, in table order
    OUT/<track>/<split>.ids.npy            (N,) the split's sample ids (a unicode array: no pickle)
    OUT/<track>/<split>.progress.json      rows written so far; `complete` once the split is done

`glt features` (glt.features.extract) writes it; `FeatureStore(OUT)` reads it, every array memory-mapped."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from glt.benchmark import parse_split_name
from glt.errors import GLTError
from glt.io import read_json
from glt.runtime.layout import STORE_RECORD

FORMAT = "glt-features"
VERSION = 1
RECORD = STORE_RECORD


def split_files(root: Path, name: str) -> tuple[Path, Path, Path]:
    """(features .npy, ids .npy, progress .json) of split `name` ('glt/train') under store `root`."""
    track, split = parse_split_name(name)
    folder = Path(root) / track
    return folder / f"{split}.npy", folder / f"{split}.ids.npy", folder / f"{split}.progress.json"


def read_progress(path: Path) -> dict | None:
    """A split's progress record, or None when there is none (or it is unreadable: start the split again)."""
    try:
        rec = read_json(path, "feature progress record")
    except GLTError:
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("rows_done"), int) else None


def read_record(root: str | os.PathLike) -> dict:
    path = Path(root) / RECORD
    rec = read_json(path, "feature store record")
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        raise GLTError(f"malformed feature store record {path}: 'format' must be '{FORMAT}'")
    return rec


class FeatureStore:
    """The features `glt features` stored: `.features(split)` (N, D) float16 memory map, `.ids(split)`,
    `.record` (the JSON record). Only complete splits are served."""

    def __init__(self, path: str | os.PathLike):
        self.root = Path(path)
        if not self.root.is_dir():
            raise GLTError(f"feature store not found: {self.root}")
        self.record = read_record(self.root)

    @property
    def splits(self) -> list[str]:
        """The complete splits."""
        return [s for s in self.record.get("splits", {}) if self.complete(s)]

    @property
    def feature_dim(self) -> int:
        return int(self.record["feature_dim"])

    def progress(self, split: str) -> dict | None:
        return read_progress(split_files(self.root, split)[2])

    def complete(self, split: str) -> bool:
        p = self.progress(split)
        return bool(p and p.get("complete"))

    def _check(self, split: str) -> tuple[Path, Path, Path]:
        files = split_files(self.root, split)
        if split not in self.record.get("splits", {}):
            known = ", ".join(self.record.get("splits", {})) or "none"
            raise GLTError(f"feature store {self.root} has no split '{split}' (it has: {known})")
        p = read_progress(files[2])
        if not (p and p.get("complete")):
            done = f"{p['rows_done']} of {p.get('rows')} rows" if p else "not started"
            raise GLTError(f"split '{split}' of feature store {self.root} is incomplete ({done}); run `glt features` "
                           f"again with the same options to finish it")
        return files

    def features(self, split: str) -> np.ndarray:
        """(N, D) float16, memory-mapped read-only (a zero-row split: an empty array)."""
        npy = self._check(split)[0]
        try:
            rows = self.record["splits"][split]["rows"]
            return np.load(npy, mmap_mode="r") if rows else np.load(npy)
        except (OSError, ValueError) as e:
            raise GLTError(f"cannot read feature file {npy}: {e}") from None

    def ids(self, split: str) -> np.ndarray:
        ids = self._check(split)[1]
        try:
            return np.load(ids, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise GLTError(f"cannot read ids file {ids}: {e}") from None

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.root)!r}, backbone={self.record.get('backbone')!r}, splits={self.splits})"
