"""Epoch samplers. A sampler draws the indices of one epoch from a generator seeded by (seed, epoch),
so every rank of a distributed run draws the same sequence and takes its own slice of it, and a
resumed run draws exactly what the uninterrupted one would have."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from torch.utils.data import Sampler

from glt.registry import Registry

SAMPLERS: Registry[Callable[..., "EpochSampler"]] = Registry("sampler")


class EpochSampler(Sampler[int]):
    def __init__(self, labels: np.ndarray, num_classes: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.labels = np.asarray(labels)
        self.num_classes = num_classes
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.skip = 0  # indices of this rank to leave out at the start (resuming inside an epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def update(self, **state) -> None:
        """Replace sampler state between epochs (called by the loop with a method's `sampler_update`)."""
        for key, value in state.items():
            if not hasattr(self, key):
                raise AttributeError(f"{type(self).__name__} has no state '{key}'")
            setattr(self, key, value)

    def generator(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch])

    def epoch_indices(self) -> np.ndarray:
        """All indices of the epoch (before the split across ranks)."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        idx = self.epoch_indices()
        if self.world_size > 1:  # pad to a multiple of world_size, then take every world_size-th
            pad = (-len(idx)) % self.world_size
            idx = np.concatenate([idx, idx[:pad]])[self.rank :: self.world_size]
        return iter(idx[self.skip :].tolist())

    def __len__(self) -> int:
        n = self.epoch_size()
        return -(-n // self.world_size)

    def epoch_size(self) -> int:
        return len(self.labels)


@SAMPLERS.register("instance")
class InstanceSampler(EpochSampler):
    """Every sample once per epoch, shuffled (the natural, long-tailed distribution)."""

    def epoch_indices(self) -> np.ndarray:
        return self.generator().permutation(len(self.labels))


@SAMPLERS.register("class_aware")
class ClassAwareSampler(EpochSampler):
    """Class-balanced sampling (Shen et al. 2016, used by cRT/LWS): draw a class uniformly, then
    `per_class` images of it (cycling through a shuffled list of its images); an epoch has as many
    samples as the split."""

    def __init__(self, *args, per_class: int = 4, **kwargs):
        super().__init__(*args, **kwargs)
        self.per_class = per_class
        order = np.argsort(self.labels, kind="stable")
        counts = np.bincount(self.labels, minlength=self.num_classes)
        self.by_class = np.split(order, np.cumsum(counts)[:-1])
        self.present = np.flatnonzero(counts)

    def epoch_indices(self) -> np.ndarray:
        g = self.generator()
        n = len(self.labels)
        draws = -(-n // self.per_class)
        classes = g.choice(self.present, size=draws)
        # for each class, the k-th draw of it takes the next `per_class` images of a shuffled cycle
        out = np.empty(draws * self.per_class, dtype=np.int64)
        for c in np.unique(classes):
            members = self.by_class[c]
            rows = np.flatnonzero(classes == c)
            need = len(rows) * self.per_class
            reps = -(-need // len(members))
            cycle = np.concatenate([g.permutation(members) for _ in range(reps)])[:need]
            slots = (rows[:, None] * self.per_class + np.arange(self.per_class)).reshape(-1)
            out[slots] = cycle
        return out[:n]


@SAMPLERS.register("weighted")
class WeightedSampler(EpochSampler):
    """Draw with replacement in proportion to per-sample weights (a zero weight is never drawn)."""

    def __init__(self, *args, weights: np.ndarray | None = None, num_samples: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.weights = np.ones(len(self.labels)) if weights is None else np.asarray(weights, dtype=np.float64)
        self.num_samples = num_samples or len(self.labels)

    def epoch_size(self) -> int:
        return self.num_samples

    def epoch_indices(self) -> np.ndarray:
        p = self.weights / self.weights.sum()
        return self.generator().choice(len(p), size=self.num_samples, replace=True, p=p)


def create_sampler(name: str, labels: np.ndarray, num_classes: int, **kwargs) -> EpochSampler:
    return SAMPLERS.get(name)(labels, num_classes, **kwargs)


@SAMPLERS.register("environments")
class EnvironmentSampler(EpochSampler):
    """IFL / IRM environments: each environment is sampled with replacement in proportion to its
    weights, and every mini-batch takes an equal share from each environment.

    Yields *tagged* indices `row + env * N` (N = split size) so a method can tell which environment
    a sample came from; `SplitDataset` maps them back to rows (row = index % N)."""

    def __init__(self, *args, env_weights: np.ndarray | None = None, num_envs: int = 2,
                 samples_per_env: int | None = None, batch_size: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        n = len(self.labels)
        self.env_weights = np.ones((num_envs, n)) if env_weights is None else np.asarray(env_weights, dtype=np.float64)
        self.samples_per_env = samples_per_env or n // len(self.env_weights)
        self.batch_size = batch_size

    def epoch_size(self) -> int:
        return self.samples_per_env * len(self.env_weights)

    def epoch_indices(self) -> np.ndarray:
        g = self.generator()
        n = len(self.labels)
        e = len(self.env_weights)
        chunk = max(1, self.batch_size // e)
        per_env = -(-self.samples_per_env // chunk) * chunk  # whole chunks; trimmed below
        draws = np.stack([g.choice(n, size=per_env, p=w / w.sum()) + k * n for k, w in enumerate(self.env_weights)])
        # (env, chunk index, chunk) -> (chunk index, env, chunk): batch b holds chunk b of every environment
        layout = draws.reshape(e, -1, chunk).transpose(1, 0, 2).reshape(-1)
        return layout[: self.epoch_size()]
