"""Groupers: metadata -> group ids, as in WILDS (`CombinatorialGrouper`). A grouper names metadata fields
(`Grouper(("label", "attribute"))`); its groups are every combination of their values, numbered in mixed radix
with the first field most significant (label-major: group = label * num_attributes + attribute)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from glt.benchmark.manifest import FREQUENCY_GROUPS
from glt.errors import unknown_name
from glt.evaluation.metadata import SplitMetadata


@dataclass(frozen=True)
class Field:
    """One metadata field a grouper can group by: its column, its number of values, the name of each value."""

    column: Callable[[SplitMetadata], np.ndarray | None]
    size: Callable[[SplitMetadata], int]
    value_names: Callable[[SplitMetadata], list[str]]


def _numbers(size: Callable[[SplitMetadata], int]) -> Callable[[SplitMetadata], list[str]]:
    return lambda m: [str(v) for v in range(size(m))]


def _num_classes(m: SplitMetadata) -> int:
    return m.num_classes


def _num_attributes(m: SplitMetadata) -> int:
    return m.num_attributes or 0


GROUP_FIELDS: dict[str, Field] = {
    "label": Field(lambda m: m.label, _num_classes, _numbers(_num_classes)),
    "frequency": Field(lambda m: m.frequency, lambda m: len(FREQUENCY_GROUPS), lambda m: list(FREQUENCY_GROUPS)),
    "attribute": Field(lambda m: m.attribute, _num_attributes, _numbers(_num_attributes)),
}


@dataclass(frozen=True)
class Grouper:
    """Groups of samples by the values of `by` (names in GROUP_FIELDS). Independent of any split: the number
    of groups, the ids and the names are read from the metadata passed in."""

    by: tuple[str, ...]  # () is the whole split as one group

    def __post_init__(self):
        if isinstance(self.by, str):
            raise ValueError(f"a grouper needs a tuple of field names, not {self.by!r}")
        for name in self.by:
            if name not in GROUP_FIELDS:
                raise unknown_name("grouping field", name, GROUP_FIELDS)
        if len(set(self.by)) != len(self.by):
            raise ValueError(f"a grouper names each field once, not {self.by!r}")

    def sizes(self, meta: SplitMetadata) -> tuple[int, ...]:
        return tuple(GROUP_FIELDS[f].size(meta) for f in self.by)

    def n_groups(self, meta: SplitMetadata) -> int:
        return int(np.prod(self.sizes(meta), dtype=np.int64))

    def group_ids(self, meta: SplitMetadata) -> np.ndarray:
        """int64 (N,): the group of every sample. A field the split lacks is a ValueError."""
        ids = np.zeros(len(meta), dtype=np.int64)
        for name, size in zip(self.by, self.sizes(meta)):
            column = GROUP_FIELDS[name].column(meta)
            if column is None:
                raise ValueError(f"cannot group by '{name}': the split has no {name} column")
            ids = ids * size + column
        return ids

    def field_values(self, meta: SplitMetadata) -> np.ndarray:
        """int64 (n_groups, len(by)): the value of every field in every group (the inverse of group_ids)."""
        if not self.by:
            return np.zeros((1, 0), dtype=np.int64)
        grids = np.meshgrid(*(np.arange(s) for s in self.sizes(meta)), indexing="ij")
        return np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)

    def group_names(self, meta: SplitMetadata) -> list[str]:
        """One field: its value names ('many', '0'...); several: 'label=3,attribute=1'."""
        names = [GROUP_FIELDS[f].value_names(meta) for f in self.by]
        values = self.field_values(meta)
        if len(self.by) <= 1:
            return list(names[0]) if self.by else ["all"]
        return [",".join(f"{f}={names[j][v]}" for j, (f, v) in enumerate(zip(self.by, row))) for row in values]


WHOLE_SPLIT = Grouper(())
BY_CLASS = Grouper(("label",))
BY_FREQUENCY = Grouper(("frequency",))
BY_ATTRIBUTE = Grouper(("attribute",))
BY_CLASS_ATTRIBUTE = Grouper(("label", "attribute"))
