"""The benchmark manifest (manifest.json) and split naming."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from glt.errors import GLTError, unknown_name

FORMAT = "glt-benchmark"
VERSION = 1
FREQUENCY_GROUPS = ("many", "medium", "few")
# The splits each track may hold (docs/build.md, "What the build writes"): track `cbl` has no Test-GLT.
TRACK_SPLITS = {
    "glt": ("train", "val", "test_glt", "test_cbl", "test_gbl"),
    "cbl": ("train", "val", "test_cbl", "test_gbl"),
}
ALL_SPLIT_NAMES = tuple(f"{t}/{s}" for t, splits in TRACK_SPLITS.items() for s in splits)
ATTRIBUTE_KINDS = ("index", "multilabel")


def parse_split_name(name: str) -> tuple[str, str]:
    """'glt/test_gbl' -> ('glt', 'test_gbl'), with a clear error for anything else."""
    if name not in ALL_SPLIT_NAMES:
        raise unknown_name("split", name, ALL_SPLIT_NAMES)
    track, split = name.split("/")
    return track, split


@dataclass
class Manifest:
    name: str
    classes: list[str]
    # "index": one attribute index per sample (ImageNet-GLT pretext attributes, colours);
    # "multilabel": a binary vector per sample plus a scalar attribute group (MSCOCO-GLT).
    attribute_kind: str = "index"
    # number of attribute values ("index") or groups ("multilabel") used for breakdowns
    num_attributes: int = 3
    attribute_names: list[str] = field(default_factory=list)  # multilabel: one per vector entry
    attribute_vector_length: int = 0
    tracks: dict[str, list[str]] = field(default_factory=dict)
    # which transform family suits the images: "small" (embedded benchmark) or "imagenet"
    image_style: str = "imagenet"
    image_size: int = 112
    info: dict[str, Any] = field(default_factory=dict)  # builder, seed, options: for the record
    format: str = FORMAT
    version: int = VERSION

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def split_names(self) -> list[str]:
        return [f"{t}/{s}" for t, splits in self.tracks.items() for s in splits]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any, source: str) -> "Manifest":
        if not isinstance(d, dict):
            raise GLTError(f"malformed manifest {source}: expected a JSON object")
        if d.get("format") != FORMAT:
            raise GLTError(f"malformed manifest {source}: 'format' must be '{FORMAT}'")
        known = set(cls.__dataclass_fields__)
        for key in d:
            if key not in known:
                raise GLTError(f"malformed manifest {source}: {unknown_name('key', key, known)}")
        for key in ("name", "classes", "tracks"):
            if key not in d:
                raise GLTError(f"malformed manifest {source}: missing key '{key}'")
        m = cls(**d)
        if not isinstance(m.classes, list) or not m.classes:
            raise GLTError(f"malformed manifest {source}: 'classes' must be a non-empty list")
        for key, least in (("num_attributes", 1), ("attribute_vector_length", 0)):
            v = getattr(m, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                raise GLTError(f"malformed manifest {source}: '{key}' must be an integer >= {least}, not {v!r}")
        if m.attribute_kind not in ATTRIBUTE_KINDS:
            raise GLTError(
                f"malformed manifest {source}: 'attribute_kind' must be one of {', '.join(ATTRIBUTE_KINDS)}"
            )
        if not isinstance(m.tracks, dict):
            raise GLTError(f"malformed manifest {source}: 'tracks' must be an object")
        for track, splits in m.tracks.items():
            if track not in TRACK_SPLITS:
                raise GLTError(f"malformed manifest {source}: {unknown_name('track', track, TRACK_SPLITS)}")
            for s in splits:
                if s not in TRACK_SPLITS[track]:
                    raise GLTError(
                        f"malformed manifest {source}: {unknown_name(f'split of track {track}', s, TRACK_SPLITS[track])}"
                    )
        return m
