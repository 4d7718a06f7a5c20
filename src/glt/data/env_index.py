"""Tagged sample indices: an environment sampler (IFL, IRM, BBN's reversed branch) passes each drawn
sample through the DataLoader as one integer that carries both the row of the split and the environment
it was drawn from. This type is the only place that knows how the two are packed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EnvIndex:
    """Packing of (row, environment) for a split of `size` rows: `row + env * size`. Works element-wise on
    ints, numpy arrays and torch tensors alike."""

    size: int

    def __post_init__(self):
        if self.size < 1:
            raise ValueError(f"EnvIndex needs a split of at least one row, not {self.size}")

    def pack(self, rows, envs):
        return rows + envs * self.size

    def rows(self, tagged):
        return tagged % self.size

    def envs(self, tagged):
        return tagged // self.size
