"""What evaluation knows about the samples of a split, as one object (docs/metrics.md): the class label and,
where the split has them, the frequency group, the attribute (index or group) and the binary attribute vector."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glt.benchmark.manifest import FREQUENCY_GROUPS


def check_range(name: str, values: np.ndarray, size: int) -> None:
    if values.size and (values.min() < 0 or values.max() >= size):
        bad = int(values.min()) if values.min() < 0 else int(values.max())
        raise ValueError(f"{name} value {bad} is outside 0..{size - 1}")


@dataclass
class SplitMetadata:
    """Per-sample metadata of one split; columns a split lacks are None. Values outside their range raise
    ValueError. `num_attributes` defaults to the largest attribute + 1."""

    label: np.ndarray
    num_classes: int
    frequency: np.ndarray | None = None
    attribute: np.ndarray | None = None
    num_attributes: int | None = None
    attributes: np.ndarray | None = None  # (N, A) binary vector of multilabel benchmarks
    attribute_names: list[str] | None = None

    def __post_init__(self):
        self.label = np.asarray(self.label, dtype=np.int64)
        self.num_classes = int(self.num_classes)
        check_range("label", self.label, self.num_classes)
        n = len(self.label)
        if self.frequency is not None:
            self.frequency = self._column("frequency", self.frequency, n)
            check_range("frequency group", self.frequency, len(FREQUENCY_GROUPS))
        if self.attribute is not None:
            self.attribute = self._column("attribute", self.attribute, n)
            if self.num_attributes is None:
                self.num_attributes = int(self.attribute.max(initial=-1)) + 1
            self.num_attributes = int(self.num_attributes)
            check_range("attribute", self.attribute, self.num_attributes)
        if self.attributes is not None:
            self.attributes = np.asarray(self.attributes)
            if self.attributes.ndim != 2 or len(self.attributes) != n:
                raise ValueError(f"attribute vectors of shape {self.attributes.shape}, expected ({n}, A)")

    @staticmethod
    def _column(name: str, values, n: int) -> np.ndarray:
        values = np.asarray(values, dtype=np.int64)
        if values.shape != (n,):
            raise ValueError(f"{name} has shape {values.shape}, labels ({n},)")
        return values

    def __len__(self) -> int:
        return len(self.label)

    @classmethod
    def from_table(cls, table, num_classes: int, num_attributes: int | None = None,
                   attribute_names: list[str] | None = None) -> "SplitMetadata":
        """From a benchmark split table (glt.benchmark.SplitTable), reading only the columns it has."""
        vectors = getattr(table, "attributes", None)
        return cls(
            table.label, num_classes, getattr(table, "frequency", None), getattr(table, "attribute", None),
            num_attributes, vectors, (attribute_names or None) if vectors is not None else None,
        )

    @classmethod
    def from_benchmark(cls, bench, split: str) -> "SplitMetadata":
        """The metadata of `split` of a glt.benchmark.Benchmark, with the manifest's class and attribute counts."""
        m = bench.manifest
        return cls.from_table(bench.split(split), bench.num_classes, m.num_attributes, m.attribute_names or None)
