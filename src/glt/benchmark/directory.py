"""Open a benchmark directory, or write one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from glt.benchmark.manifest import Manifest, parse_split_name
from glt.benchmark.split import SplitTable
from glt.errors import GLTError
from glt.io import existing_files, read_json, write_json

MANIFEST = "manifest.json"


def split_file(root: Path, name: str) -> Path:
    track, split = parse_split_name(name)
    return root / "splits" / track / f"{split}.parquet"


class Benchmark:
    """A benchmark directory on disk: a manifest plus one table per split (loaded lazily, cached)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise GLTError(f"benchmark directory not found: {self.root}")
        path = self.root / MANIFEST
        self.manifest = Manifest.from_dict(read_json(path, "manifest"), str(path))
        self._splits: dict[str, SplitTable] = {}

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def num_classes(self) -> int:
        return self.manifest.num_classes

    def has_split(self, name: str) -> bool:
        return name in self.manifest.split_names

    def split(self, name: str) -> SplitTable:
        if name not in self._splits:
            parse_split_name(name)
            if not self.has_split(name):
                raise GLTError(
                    f"benchmark {self.root} has no split '{name}' (it has: {', '.join(self.manifest.split_names)})"
                )
            m = self.manifest
            self._splits[name] = SplitTable.read(
                split_file(self.root, name), self.num_classes, m.num_attributes,
                m.attribute_vector_length if m.attribute_kind == "multilabel" else None,
            )
        return self._splits[name]

    def source_image_path(self, path: str) -> Path:
        """The original image file of a split row."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    def image_path(self, path: str) -> Path:
        """The image file of a split row as the benchmark holds it (a training set-up may read a resized
        copy instead: glt.data.image_cache)."""
        return self.source_image_path(path)

    def missing_images(self, names: list[str] | None = None) -> dict[str, int]:
        """Count split rows whose image file does not exist (per split)."""
        names = names or self.manifest.split_names
        out = {}
        for name in names:
            paths = [str(self.image_path(p)) for p in self.split(name).path]
            out[name] = int((~existing_files(paths)).sum()) if paths else 0
        return out


def check_splits(manifest: Manifest, splits: dict[str, SplitTable], unique_ids: bool = False) -> None:
    """Refuse split tables that do not fit the manifest (a GLTError naming the split): labels outside
    the classes, attributes outside 0..num_attributes-1, attribute vectors of the wrong length, and
    with `unique_ids` a sample id twice in one split (docs/build.md, "What the builders check")."""
    C, K = manifest.num_classes, manifest.num_attributes
    if isinstance(K, bool) or not isinstance(K, int) or K < 1:
        raise GLTError(f"manifest: 'num_attributes' must be a positive integer, not {K!r}")
    for name, table in splits.items():
        parse_split_name(name)
        if not len(table):
            continue
        lo, hi = int(table.label.min()), int(table.label.max())
        if lo < 0 or hi >= C:
            raise GLTError(f"split {name}: label {lo if lo < 0 else hi} is outside the class range 0..{C - 1}")
        lo, hi = int(table.attribute.min()), int(table.attribute.max())
        if lo < 0 or hi >= K:
            i = int(np.argmax((table.attribute < 0) | (table.attribute >= K)))
            raise GLTError(
                f"split {name}: sample '{table.id[i]}' has attribute {int(table.attribute[i])}, outside "
                f"0..{K - 1} (num_attributes {K})"
            )
        if manifest.attribute_kind == "multilabel" and table.attributes is not None:
            if table.attributes.shape[1] != manifest.attribute_vector_length:
                raise GLTError(
                    f"split {name}: attribute vectors of length {table.attributes.shape[1]}, the manifest's "
                    f"attribute_vector_length is {manifest.attribute_vector_length}"
                )
        if unique_ids:
            dup = duplicate_id(table.id)
            if dup is not None:
                raise GLTError(f"split {name}: sample id '{dup}' appears twice")


def duplicate_id(ids: np.ndarray) -> str | None:
    """The first id that appears twice, or None."""
    if len(pd.unique(ids)) == len(ids):
        return None
    dup = pd.Series(ids).duplicated()
    return str(ids[int(np.argmax(dup.to_numpy()))])


def write_benchmark(
    root: str | os.PathLike, manifest: Manifest, splits: dict[str, SplitTable], unique_ids: bool = False
) -> None:
    """Write manifest + split tables into `root` (a builder wraps it in glt.benchmark.output.build_output).
    Everything is checked first (`check_splits`): a refused table writes nothing."""
    root = Path(root)
    check_splits(manifest, splits, unique_ids)
    tracks: dict[str, list[str]] = {}
    for name, table in splits.items():
        track, split = parse_split_name(name)
        tracks.setdefault(track, []).append(split)
        table.write(split_file(root, name))
    manifest.tracks = tracks
    write_json(root / MANIFEST, manifest.to_dict())
