"""Decoded-image arrays of an in-memory benchmark (written by `glt build digits`).

    DIR/arrays/index.json        {split: {"file", "rows", "ids_sha256", "shape"}}
    DIR/arrays/<track>_<split>.npy   uint8 (N, 3, H, W), the split table's row order

Splits sharing one table (ColorDigits-GLT's test_gbl / test_cbl in both tracks) share one file. An
entry is used only when its row count and the hash of the split's ids and paths match the table, so
an array left over from another build is never read. Training never writes here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from glt.errors import GLTError
from glt.io import read_json

ARRAYS_DIR = "arrays"
INDEX = "index.json"


def table_digest(table) -> str:
    """sha256 over the ids and paths of a split table, in row order."""
    h = hashlib.sha256()
    for i, p in zip(table.id, table.path):
        h.update(f"{i}\0{p}\n".encode())
    return h.hexdigest()


def array_file(split: str) -> str:
    return split.replace("/", "_") + ".npy"


def decoded_array_path(root: str | Path, split: str, table) -> Path | None:
    """The decoded array of `split` under benchmark folder `root` if one matches `table`, else None."""
    index = Path(root) / ARRAYS_DIR / INDEX
    if not index.is_file():
        return None
    try:
        entry = read_json(index, "decoded arrays index").get(split)
    except (GLTError, AttributeError):  # a damaged index: fall back to the images
        return None
    if not isinstance(entry, dict) or entry.get("rows") != len(table):
        return None
    if entry.get("ids_sha256") != table_digest(table):
        return None
    path = Path(root) / ARRAYS_DIR / str(entry.get("file", ""))
    return path if path.is_file() and path.suffix == ".npy" else None
