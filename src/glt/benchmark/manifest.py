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

# What a benchmark is (the `kind` field): the paper's training settings and normalisation depend on it.
# None: a hand-made benchmark.
KINDS = ("imagenet_glt", "mscoco_glt", "colordigits_glt")
# A manifest written before the field existed: its kind is inferred from the builder recorded in `info`.
# `folder` and `torchvision` run the ImageNet-GLT recipe on other images (docs/build.md).
_BUILDER_KINDS = {"imagenet": "imagenet_glt", "folder": "imagenet_glt", "torchvision": "imagenet_glt",
                  "coco": "mscoco_glt"}
# `glt import` records the layout of the original files it read (glt.benchmark.original)
IMPORT_LAYOUT_KINDS = {"imagenet-glt": "imagenet_glt", "mscoco-glt": "mscoco_glt"}


class _Infer:
    """The default of Manifest.kind: infer it from `info` (a manifest of older glt, a test's)."""

    def __repr__(self) -> str:
        return "INFER"


INFER = _Infer()


def infer_kind(info: Any, image_style: str) -> str | None:
    """The kind of a manifest without a `kind` field, from its recorded builder (or imported layout)."""
    info = info if isinstance(info, dict) else {}
    builder = info.get("builder")
    if builder == "digits":
        return "colordigits_glt"
    if image_style != "imagenet":
        return None
    if builder == "import":
        layout = info.get("layout")
        return IMPORT_LAYOUT_KINDS.get(layout) if isinstance(layout, str) else None
    return _BUILDER_KINDS.get(builder) if isinstance(builder, str) else None


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
    kind: str | None = INFER  # one of KINDS, or None (hand-made); written by every builder and `glt import`
    format: str = FORMAT
    version: int = VERSION

    def __post_init__(self):
        if self.kind is INFER:
            self.kind = infer_kind(self.info, self.image_style)

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
        if m.kind is not None and m.kind not in KINDS:
            raise GLTError(f"malformed manifest {source}: 'kind' must be null or one of {', '.join(KINDS)}, "
                           f"not {m.kind!r}")
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
