"""Search spaces: the range each setting may be searched over, as small typed distributions keyed by a
dotted config key (`optim.lr`, `method_args.tau`, `wrapper_args.center_lr`).

A random draw is a pure function of (sweep seed, method name, trial index), as DomainBed's hyper-parameter
seeds are: the same sweep seed gives the same draws on any machine and in any order of trials. The same
distributions hand themselves to Optuna (`suggest`), so a TPE search walks the same space.

This module imports numpy only (no torch, no optuna at import time): `glt methods` lists the spaces."""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LogUniform:
    """A float whose logarithm is uniform on [log low, log high] (learning rates, weight decays)."""

    low: float
    high: float

    def __post_init__(self):
        if not (0 < self.low <= self.high):
            raise ValueError(f"LogUniform needs 0 < low <= high, not ({self.low}, {self.high})")

    def draw(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=True)

    def describe(self) -> str:
        return f"log-uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Uniform:
    """A float uniform on [low, high]."""

    low: float
    high: float

    def __post_init__(self):
        if not self.low <= self.high:
            raise ValueError(f"Uniform needs low <= high, not ({self.low}, {self.high})")

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high)

    def describe(self) -> str:
        return f"uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class IntUniform:
    """An integer uniform on {low, ..., high} (both ends included)."""

    low: int
    high: int

    def __post_init__(self):
        if not self.low <= self.high:
            raise ValueError(f"IntUniform needs low <= high, not ({self.low}, {self.high})")

    def draw(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high + 1))

    def suggest(self, trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high)

    def describe(self) -> str:
        return f"integer [{self.low}, {self.high}]"


@dataclass(frozen=True)
class Choice:
    """One of a few values, each equally likely."""

    options: tuple

    def __post_init__(self):
        if not self.options:
            raise ValueError("Choice needs at least one option")
        object.__setattr__(self, "options", tuple(self.options))

    def draw(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]

    def suggest(self, trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.options))

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.options))


Distribution = LogUniform | Uniform | IntUniform | Choice
SearchSpace = Mapping[str, Distribution]

# Every method's optimiser: searched around the defaults of glt's schedule (lr 0.1 x batch/256 style recipes
# on the ResNeXt, 0.05-0.1 on the small CNN), a decade of weight decay on each side of 5e-4.
COMMON_SPACE: dict[str, Distribution] = {
    "optim.lr": LogUniform(0.01, 0.5),
    "optim.weight_decay": LogUniform(5e-5, 5e-3),
}


def trial_rng(seed: int, method: str, trial: int) -> np.random.Generator:
    """The generator of trial `trial` of `method` in a sweep seeded `seed`: independent of every other
    (method, trial) pair, the same on every machine (crc32 of the name, not Python's salted hash)."""
    return np.random.default_rng([int(seed) % 2**32, zlib.crc32(method.encode()), int(trial)])


def draw(space: SearchSpace, seed: int, method: str, trial: int) -> dict[str, Any]:
    """One random draw of every key of `space`, taken in sorted key order (so the draw does not depend on
    the order the space's dict was written in)."""
    rng = trial_rng(seed, method, trial)
    return {key: space[key].draw(rng) for key in sorted(space)}


def suggest(space: SearchSpace, trial) -> dict[str, Any]:
    """Optuna's suggestion of every key of `space` for `trial` (an optuna.Trial)."""
    return {key: space[key].suggest(trial, key) for key in sorted(space)}


def merge_spaces(*spaces: SearchSpace | None) -> dict[str, Distribution]:
    """Later spaces win key by key (common < base method < wrapper)."""
    out: dict[str, Distribution] = {}
    for s in spaces:
        out.update(s or {})
    return out


def describe(space: SearchSpace) -> dict[str, str]:
    return {key: space[key].describe() for key in sorted(space)}
