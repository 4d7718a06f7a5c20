"""COCO-Attributes labels: the authors' joblib pickle (read only behind an explicit opt-in) and its safe
.npz conversion (plain arrays, read with ``allow_pickle=False``).

The pickle holds ``ann_vecs`` (patch id -> 204 attribute scores), ``patch_id_to_ann_id`` (patch id -> COCO
annotation id) and ``attributes`` (a list of ``{id, name}``). Vector entry j is the j-th attribute sorted by
id (as in the original code); an attribute is present when its score is > 0.5. The threshold is applied to
the scores as stored, before any conversion, so the .npz holds exactly the presence bits of the pickle.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glt.io import file_mode
from glt.errors import GLTError
from glt.io import atomic_path

NPZ_FORMAT = "glt-coco-attributes-1"
THRESHOLD = 0.5
NPZ_KEYS = ("format", "patch_ids", "ann_ids", "present", "attribute_ids", "attribute_names")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass
class CocoAttributes:
    """One row per labelled object, in the order of the source file (the order Test-GBL scans)."""

    patch_ids: np.ndarray  # str (object array)
    ann_ids: np.ndarray  # int64: COCO annotation id of each object
    present: np.ndarray  # uint8 (N, A): 1 where the attribute score is > 0.5
    attribute_ids: np.ndarray  # int64 (A,): COCO-Attributes attribute id of each vector entry (sorted)
    attribute_names: list[str]

    def __len__(self) -> int:
        return len(self.patch_ids)

    @property
    def num_attributes(self) -> int:
        return self.present.shape[1]


def _check(attrs: CocoAttributes, source: str) -> CocoAttributes:
    n, a = attrs.present.shape
    if len(attrs.ann_ids) != n or len(attrs.patch_ids) != n:
        raise GLTError(
            f"malformed COCO-Attributes file {source}: patch ids, annotation ids and vectors differ in length"
        )
    if len(attrs.attribute_names) != a or len(attrs.attribute_ids) != a:
        raise GLTError(
            f"malformed COCO-Attributes file {source}: {len(attrs.attribute_names)} attribute names "
            f"for vectors of length {a}"
        )
    if n == 0:
        raise GLTError(f"COCO-Attributes file {source} holds no objects")
    if np.any(attrs.present > 1):
        raise GLTError(f"malformed COCO-Attributes file {source}: 'present' must be binary")
    ids, counts = np.unique(attrs.attribute_ids, return_counts=True)
    if (counts > 1).any():
        raise GLTError(f"malformed COCO-Attributes file {source}: attribute id {ids[counts > 1][0]} appears twice")
    uniq, counts = np.unique(attrs.patch_ids.astype(str), return_counts=True)
    if len(uniq) != n:
        raise GLTError(f"malformed COCO-Attributes file {source}: patch id '{uniq[counts > 1][0]}' appears twice")
    bad = [p for p in attrs.patch_ids if not _SAFE_ID.match(p)]
    if bad:
        # patch ids become file names of the crops
        raise GLTError(f"COCO-Attributes file {source}: patch id '{bad[0]}' is not usable as a file name")
    return attrs


def is_npz(path: str | os.PathLike) -> bool:
    """An .npz is a zip archive; anything else is treated as a pickle."""
    return zipfile.is_zipfile(path)


def read_npz(path: str | os.PathLike) -> CocoAttributes:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in NPZ_KEYS if k not in z.files]
            if missing:
                raise GLTError(f"malformed COCO-Attributes file {path}: missing array '{missing[0]}'")
            if str(z["format"]) != NPZ_FORMAT:
                raise GLTError(f"malformed COCO-Attributes file {path}: 'format' must be '{NPZ_FORMAT}'")
            present = z["present"]
            if present.size and not np.isin(present, (0, 1)).all():  # before the uint8 cast (257 would be 1)
                bad = present[~np.isin(present, (0, 1))].flat[0]
                raise GLTError(f"malformed COCO-Attributes file {path}: 'present' must hold 0 or 1, it holds {bad}")
            attrs = CocoAttributes(
                patch_ids=np.asarray(z["patch_ids"].astype(str), dtype=object),
                ann_ids=z["ann_ids"].astype(np.int64),
                present=present.astype(np.uint8),
                attribute_ids=z["attribute_ids"].astype(np.int64),
                attribute_names=[str(s) for s in z["attribute_names"]],
            )
    except GLTError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, TypeError) as e:
        # ValueError includes "Object arrays cannot be loaded when allow_pickle=False"
        raise GLTError(f"malformed COCO-Attributes file {path}: {e}") from None
    if attrs.present.ndim != 2:
        raise GLTError(f"malformed COCO-Attributes file {path}: 'present' must be a 2-d array")
    return _check(attrs, str(path))


def read_pickle(path: str | os.PathLike, trust_pickle: bool = False) -> CocoAttributes:
    """Unpickle the authors' file. Unpickling runs code from the file, so it needs `trust_pickle`."""
    path = Path(path)
    if not trust_pickle:
        raise GLTError(
            f"{path} is a pickle (not a .npz); unpickling can run arbitrary code, so it is only read with "
            f"--trust-pickle (or convert it once: glt convert-attributes {path} --trust-pickle --out attrs.npz)"
        )
    import joblib  # a dependency of scikit-learn

    try:
        obj = joblib.load(path)
    except Exception as e:  # noqa: BLE001 - any failure of an untrusted/corrupt pickle is a user error
        raise GLTError(f"cannot read COCO-Attributes pickle {path}: {type(e).__name__}: {e}") from None
    return from_pickle_object(obj, str(path))


def from_pickle_object(obj, source: str) -> CocoAttributes:
    """Convert the unpickled dict into arrays, checking its shape on the way."""
    if not isinstance(obj, dict):
        raise GLTError(f"malformed COCO-Attributes file {source}: expected a dict, got {type(obj).__name__}")
    for key in ("ann_vecs", "patch_id_to_ann_id", "attributes"):
        if key not in obj:
            raise GLTError(f"malformed COCO-Attributes file {source}: missing key '{key}'")
    ann_vecs, to_ann = obj["ann_vecs"], obj["patch_id_to_ann_id"]
    if not isinstance(ann_vecs, dict) or not isinstance(to_ann, dict):
        raise GLTError(f"malformed COCO-Attributes file {source}: 'ann_vecs' and 'patch_id_to_ann_id' must be dicts")
    try:
        attributes = sorted(obj["attributes"], key=lambda d: d["id"])
        attribute_ids = np.array([int(d["id"]) for d in attributes], dtype=np.int64)
        attribute_names = [str(d["name"]) for d in attributes]
    except (TypeError, KeyError, ValueError) as e:
        raise GLTError(
            f"malformed COCO-Attributes file {source}: 'attributes' must be a list of {{id, name}}: {e}"
        ) from None
    keys = list(ann_vecs)
    missing = [k for k in keys if k not in to_ann]
    if missing:
        raise GLTError(
            f"malformed COCO-Attributes file {source}: {len(missing)} patch ids have no entry in "
            f"'patch_id_to_ann_id' (first: {missing[0]!r})"
        )
    try:
        scores = np.asarray([np.asarray(ann_vecs[k]).reshape(-1) for k in keys])
        ann_ids = np.array([int(to_ann[k]) for k in keys], dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise GLTError(f"malformed COCO-Attributes file {source}: attribute vectors: {e}") from None
    if scores.ndim != 2 or scores.shape[1] != len(attribute_names):
        raise GLTError(
            f"malformed COCO-Attributes file {source}: attribute vectors must all have length "
            f"{len(attribute_names)} (one score per attribute)"
        )
    # threshold in the stored dtype, exactly as the original `val > 0.5`
    present = (scores > THRESHOLD).astype(np.uint8)
    attrs = CocoAttributes(
        patch_ids=np.array([str(k) for k in keys], dtype=object),
        ann_ids=ann_ids,
        present=present,
        attribute_ids=attribute_ids,
        attribute_names=attribute_names,
    )
    return _check(attrs, source)


def load_attributes(path: str | os.PathLike, trust_pickle: bool = False) -> CocoAttributes:
    """Read COCO-Attributes from the safe .npz, or from the pickle when `trust_pickle` is given."""
    path = Path(path)
    if not path.is_file():
        raise GLTError(f"COCO-Attributes file not found: {path}")
    if is_npz(path):
        return read_npz(path)
    return read_pickle(path, trust_pickle)


def write_npz(attrs: CocoAttributes, out: str | os.PathLike) -> Path:
    """Write the safe format (atomically). Strings are stored as fixed-width unicode, never as objects."""
    out = Path(out)
    with atomic_path(out) as tmp:
        os.chmod(tmp, file_mode())  # the umask's mode, not the temporary file's 0600
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                format=np.array(NPZ_FORMAT),
                patch_ids=np.array(attrs.patch_ids.tolist(), dtype=str),
                ann_ids=attrs.ann_ids.astype(np.int64),
                present=attrs.present.astype(np.uint8),
                attribute_ids=attrs.attribute_ids.astype(np.int64),
                attribute_names=np.array(attrs.attribute_names, dtype=str),
            )
    return out


def convert_attributes(src: str | os.PathLike, out: str | os.PathLike, trust_pickle: bool = False) -> CocoAttributes:
    """Pickle (or .npz) -> safe .npz. Returns what was written."""
    attrs = load_attributes(src, trust_pickle)
    write_npz(attrs, out)
    return attrs
