"""Epoch samplers. A sampler draws the indices of one epoch from a generator seeded by (seed, epoch),
so every rank of a distributed run draws the same sequence and takes its own slice of it, and a
resumed run draws exactly what the uninterrupted one would have."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from torch.utils.data import Sampler

from glt.data.env_index import EnvIndex
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
        self.epoch = int(epoch)

    def set_skip(self, skip: int) -> None:
        """Leave out this rank's first `skip` indices of the epoch (resuming inside it)."""
        if skip < 0:
            raise ValueError(f"a sampler cannot skip {skip} indices")
        self.skip = int(skip)

    def update(self, **state) -> None:
        """State between epochs as keyword arguments (a method's `sampler_update`): each key goes to the
        sampler's setter `set_<key>`; a key without one is an error naming the state the sampler takes."""
        for key in state:
            if not callable(getattr(self, f"set_{key}", None)):
                takes = sorted(n[4:] for n in dir(self) if n.startswith("set_") and callable(getattr(self, n)))
                raise AttributeError(f"{type(self).__name__} has no state '{key}' (it takes: {', '.join(takes)})")
        for key, value in state.items():
            getattr(self, f"set_{key}")(value)

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
    """Class-aware sampling (Shen et al. 2016; cRT/LWS) as the original's data/Sampler_ClassAware.py:
    classes come from a cycle through the present classes, reshuffled at every pass (every class once per
    block of C draws); each class draw takes `per_class` consecutive images of that class from its own
    cycle through its images, reshuffled at every pass. An epoch has the original's
    `min(max_c n_c * C, max_aug * N)` samples (C present classes, N images), or `num_samples` if given
    (docs/fidelity.md, section A).

    The original's cycles run on across epochs (its iterators live in the sampler object); here each is
    one endless stream per sampler seed, drawn in chunks from generators seeded by (seed, stream, chunk),
    and epoch e is a fixed slice of the streams: deterministic from (seed, epoch), so every rank draws the
    same epoch and a resumed run draws what the uninterrupted one would have. As in the original, the
    last class draw of an epoch uses up all `per_class` images of its class even where the epoch ends
    before they are all yielded, and the next epoch starts with a new class draw."""

    CHUNK = 256  # images per generator of a class's image stream (whole permutations)

    def __init__(self, *args, per_class: int = 4, max_aug: int = 4, num_samples: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if per_class < 1:
            raise ValueError(f"class-aware sampling needs per_class >= 1, not {per_class}")
        self.per_class = per_class
        order = np.argsort(self.labels, kind="stable")
        self.counts = np.bincount(self.labels, minlength=self.num_classes)
        self.by_class = np.split(order, np.cumsum(self.counts)[:-1])
        self.present = np.flatnonzero(self.counts)
        original = int(self.counts.max(initial=0)) * len(self.present)
        self.num_samples = int(num_samples) if num_samples else min(original, max_aug * len(self.labels))

    def epoch_size(self) -> int:
        return self.num_samples

    def _class_block(self, b: int) -> np.ndarray:
        """The b-th pass of the class cycle: a permutation of the present classes."""
        return np.random.default_rng([self.seed, 1, b]).permutation(self.present)

    def _images(self, c: int, start: int, stop: int) -> np.ndarray:
        """Positions [start, stop) of class c's image stream: its images, reshuffled at every pass."""
        members = self.by_class[c]
        n = len(members)
        per_chunk = -(-self.CHUNK // n)  # whole passes per chunk
        size = per_chunk * n
        chunks = [
            members[np.random.default_rng([self.seed, 2, int(c), q]).permuted(
                np.tile(np.arange(n), (per_chunk, 1)), axis=1)].reshape(-1)
            for q in range(start // size, (stop - 1) // size + 1)
        ]
        first = (start // size) * size
        return np.concatenate(chunks)[start - first : stop - first]

    def epoch_indices(self) -> np.ndarray:
        k, num_c = self.per_class, len(self.present)
        if not self.num_samples:
            return np.empty(0, dtype=np.int64)
        draws = -(-self.num_samples // k)  # class draws per epoch (the last one may be cut short)
        t0 = self.epoch * draws  # class draws of the earlier epochs
        b0, b1 = t0 // num_c, (t0 + draws - 1) // num_c
        cycle = np.concatenate([self._class_block(b) for b in range(b0, b1 + 1)])
        offset = t0 - b0 * num_c
        classes = cycle[offset : offset + draws]
        # draws of each class before this epoch: one per full pass, plus the started pass's
        before = b0 + np.bincount(cycle[:offset], minlength=self.num_classes)
        out = np.empty(draws * k, dtype=np.int64)
        order = np.argsort(classes, kind="stable")  # the draws of each class, in order
        starts = np.concatenate([[0], np.cumsum(np.bincount(classes, minlength=self.num_classes))])
        for c in self.present:
            rows = order[starts[c] : starts[c + 1]]
            if not len(rows):
                continue
            first = before[c] * k
            images = self._images(c, first, first + len(rows) * k)
            out[(rows[:, None] * k + np.arange(k)).reshape(-1)] = images
        return out[: self.num_samples]


@SAMPLERS.register("weighted")
class WeightedSampler(EpochSampler):
    """Draw with replacement in proportion to per-sample weights (a zero weight is never drawn)."""

    def __init__(self, *args, weights: np.ndarray | None = None, num_samples: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.set_weights(np.ones(len(self.labels)) if weights is None else weights)
        self.num_samples = num_samples or len(self.labels)

    def set_weights(self, weights) -> None:
        """Per-sample weights, one per row of the split."""
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(self.labels),):
            raise ValueError(f"weighted sampling needs {len(self.labels)} weights, not shape {weights.shape}")
        self.weights = weights

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

    Yields *tagged* indices (glt.data.env_index.EnvIndex: `row + env * N`, N = split size) so a method can
    tell which environment a sample came from; `SplitDataset` maps them back to rows."""

    def __init__(self, *args, env_weights: np.ndarray | None = None, num_envs: int = 2,
                 samples_per_env: int | None = None, batch_size: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        n = len(self.labels)
        self.index = EnvIndex(n)
        self.env_weights = np.ones((num_envs, n) if env_weights is None else np.shape(env_weights)[:1] + (n,))
        if env_weights is not None:
            self.set_env_weights(env_weights)
        self.samples_per_env = samples_per_env or n // len(self.env_weights)
        self.batch_size = batch_size

    def set_env_weights(self, env_weights) -> None:
        """New (environments, N) sampling weights (IFL / IRM rebuilt their environments); the number of
        environments stays the one the sampler was built with."""
        w = np.asarray(env_weights, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != len(self.labels) or w.shape[0] != len(self.env_weights):
            raise ValueError(f"environment weights must have shape {self.env_weights.shape}, not {w.shape}")
        self.env_weights = w

    def epoch_size(self) -> int:
        return self.samples_per_env * len(self.env_weights)

    def epoch_indices(self) -> np.ndarray:
        g = self.generator()
        n = len(self.labels)
        e = len(self.env_weights)
        chunk = max(1, self.batch_size // e)
        per_env = -(-self.samples_per_env // chunk) * chunk  # whole chunks; trimmed below
        draws = np.stack([self.index.pack(g.choice(n, size=per_env, p=w / w.sum()), k)
                          for k, w in enumerate(self.env_weights)])
        # (env, chunk index, chunk) -> (chunk index, env, chunk): batch b holds chunk b of every environment
        layout = draws.reshape(e, -1, chunk).transpose(1, 0, 2).reshape(-1)
        return layout[: self.epoch_size()]
