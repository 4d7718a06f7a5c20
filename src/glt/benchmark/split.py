"""One split of a benchmark as a columnar table (Parquet on disk, numpy in memory)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from glt.errors import GLTError, unknown_name
from glt.io import atomic_path

REQUIRED_COLUMNS = ("id", "path", "label", "frequency", "attribute")
OPTIONAL_COLUMNS = ("attributes",)  # multilabel benchmarks: the binary attribute vector


@dataclass
class SplitTable:
    """Rows of one split. `attribute` is the scalar attribute (index or group) used for breakdowns;
    `attributes` is the binary attribute vector of multilabel benchmarks (else None)."""

    id: np.ndarray  # str (object array)
    path: np.ndarray  # str (object array): relative to the benchmark root, or absolute
    label: np.ndarray  # int64, 0 = largest class
    frequency: np.ndarray  # int8: 0 many, 1 medium, 2 few
    attribute: np.ndarray  # int16
    attributes: np.ndarray | None = None  # uint8 (N, A)

    def __post_init__(self):
        self.id = np.asarray(self.id, dtype=object)
        self.path = np.asarray(self.path, dtype=object)
        self.label = np.asarray(self.label, dtype=np.int64)
        for name, dtype in (("frequency", np.int8), ("attribute", np.int16)):
            col = np.asarray(getattr(self, name))
            if col.size and col.dtype.kind in "iu" and (col.min() < np.iinfo(dtype).min or col.max() > np.iinfo(dtype).max):
                bad = col.min() if col.min() < np.iinfo(dtype).min else col.max()
                raise ValueError(f"column '{name}' holds {bad}, outside the {np.dtype(dtype).name} range")
            setattr(self, name, col.astype(dtype, copy=False))
        if self.attributes is not None:
            self.attributes = np.asarray(self.attributes, dtype=np.uint8)
        n = len(self.id)
        for name in ("path", "label", "frequency", "attribute", "attributes"):
            col = getattr(self, name)
            if col is not None and len(col) != n:
                raise ValueError(f"column '{name}' has {len(col)} rows, 'id' has {n}")

    def __len__(self) -> int:
        return len(self.id)

    def take(self, index: np.ndarray) -> "SplitTable":
        return SplitTable(
            self.id[index],
            self.path[index],
            self.label[index],
            self.frequency[index],
            self.attribute[index],
            None if self.attributes is None else self.attributes[index],
        )

    @staticmethod
    def concat(tables: list["SplitTable"]) -> "SplitTable":
        vec = [t.attributes for t in tables]
        return SplitTable(
            np.concatenate([t.id for t in tables]),
            np.concatenate([t.path for t in tables]),
            np.concatenate([t.label for t in tables]),
            np.concatenate([t.frequency for t in tables]),
            np.concatenate([t.attribute for t in tables]),
            None if any(v is None for v in vec) else np.concatenate(vec),
        )

    def class_counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(self.label, minlength=num_classes)

    # ---- disk -----------------------------------------------------------------------------------
    def to_arrow(self) -> pa.Table:
        cols = {
            "id": pa.array(self.id.tolist(), pa.string()),
            "path": pa.array(self.path.tolist(), pa.string()),
            "label": pa.array(self.label.astype(np.int32)),
            "frequency": pa.array(self.frequency),
            "attribute": pa.array(self.attribute),
        }
        fields = [pa.field(name, col.type) for name, col in cols.items()]
        if self.attributes is not None:
            if self.attributes.size and self.attributes.max() > 1:
                raise ValueError("'attributes' must be a binary (0/1) vector")
            # bit-packed, one fixed_size_binary value per row: Parquet decodes a FixedSizeList<uint8> value
            # by value (about 4 s for 1M x 204 vectors), this in about 0.1 s
            packed = np.ascontiguousarray(np.packbits(self.attributes, axis=1))
            cols["attributes"] = pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(packed.shape[1]), len(packed), [None, pa.py_buffer(packed)]
            )
            fields.append(pa.field("attributes", cols["attributes"].type,
                                   metadata={"glt.vector_length": str(self.attributes.shape[1])}))
        return pa.table(cols, schema=pa.schema(fields))

    def write(self, path: str | os.PathLike) -> None:
        with atomic_path(path) as tmp:
            pq.write_table(self.to_arrow(), tmp, compression="zstd")

    @classmethod
    def read(
        cls,
        path: str | os.PathLike,
        num_classes: int | None = None,
        num_attributes: int | None = None,
        vector_length: int | None = None,
    ) -> "SplitTable":
        """Read and validate a split table; every problem is a one-line GLTError naming the file. Given the
        manifest's `num_classes` / `num_attributes` / `vector_length`, labels must lie in 0..C-1, attributes
        in 0..num_attributes-1 and attribute vectors have that length."""
        path = Path(path)
        if not path.is_file():
            raise GLTError(f"split table not found: {path}")
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as e:
            raise GLTError(f"malformed split table {path}: {e}") from None
        names = table.column_names
        for c in names:
            if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
                raise GLTError(f"split table {path}: {unknown_name('column', c, REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}")
        for c in REQUIRED_COLUMNS:
            if c not in names:
                raise GLTError(f"split table {path}: missing column '{c}'")
        try:
            attributes = None
            if "attributes" in names:
                col = table.column("attributes").combine_chunks()
                meta = table.schema.field("attributes").metadata or {}
                if not pa.types.is_fixed_size_binary(col.type) or b"glt.vector_length" not in meta or col.null_count:
                    raise ValueError("column 'attributes' is not a bit-packed binary vector")
                width = int(meta[b"glt.vector_length"])
                k = col.type.byte_width
                packed = np.frombuffer(col.buffers()[1], np.uint8, count=len(col) * k, offset=col.offset * k)
                attributes = np.unpackbits(packed.reshape(-1, k), axis=1, count=width)
            attribute = table.column("attribute").to_numpy()
            if len(attribute) and num_attributes is not None:  # before the int16 cast, which would wrap
                bad = np.flatnonzero((attribute < 0) | (attribute >= num_attributes))
                if len(bad):
                    i = int(bad[0])
                    raise GLTError(
                        f"split table {path}: sample '{table.column('id')[i].as_py()}' has attribute {attribute[i]}, "
                        f"outside 0..{num_attributes - 1} (the manifest's num_attributes is {num_attributes})"
                    )
            out = cls(
                table.column("id").to_numpy(),
                table.column("path").to_numpy(),
                table.column("label").to_numpy(),
                table.column("frequency").to_numpy(),
                attribute,
                attributes,
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError, AttributeError) as e:
            raise GLTError(f"malformed split table {path}: {e}") from None
        if len(out) and num_classes is not None:
            lo, hi = int(out.label.min()), int(out.label.max())
            if lo < 0 or hi >= num_classes:
                bad = lo if lo < 0 else hi
                raise GLTError(f"split table {path}: label {bad} is outside the class range 0..{num_classes - 1}")
        if len(out) and (out.frequency.min() < 0 or out.frequency.max() > 2):
            raise GLTError(f"split table {path}: frequency groups must be 0 (many), 1 (medium) or 2 (few)")
        if vector_length is not None and out.attributes is not None and out.attributes.shape[1] != vector_length:
            raise GLTError(
                f"split table {path}: attribute vectors of length {out.attributes.shape[1]}, the manifest's "
                f"attribute_vector_length is {vector_length}"
            )
        return out
