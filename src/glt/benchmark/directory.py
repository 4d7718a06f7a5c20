"""Open a benchmark directory, or write one."""

from __future__ import annotations

import os
from pathlib import Path

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
            self._splits[name] = SplitTable.read(split_file(self.root, name), self.num_classes)
        return self._splits[name]

    def image_path(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    def missing_images(self, names: list[str] | None = None) -> dict[str, int]:
        """Count split rows whose image file does not exist (per split)."""
        names = names or self.manifest.split_names
        out = {}
        for name in names:
            paths = [str(self.image_path(p)) for p in self.split(name).path]
            out[name] = int((~existing_files(paths)).sum()) if paths else 0
        return out


def write_benchmark(root: str | os.PathLike, manifest: Manifest, splits: dict[str, SplitTable]) -> None:
    """Write manifest + split tables into `root` (use glt.io.atomic_dir around it for a whole build)."""
    root = Path(root)
    tracks: dict[str, list[str]] = {}
    for name, table in splits.items():
        track, split = parse_split_name(name)
        tracks.setdefault(track, []).append(split)
        if len(table) and int(table.label.max()) >= manifest.num_classes:
            raise ValueError(f"split {name} has labels beyond the {manifest.num_classes} classes")
        table.write(split_file(root, name))
    manifest.tracks = tracks
    write_json(root / MANIFEST, manifest.to_dict())
