"""Training on a frozen-feature store (`data.features`): a split's rows read from the store instead of its
images, and which methods can run on them.

The store's rows are in the split table's order (glt.features.store); a store made over another benchmark,
or over changed split rows, is refused by comparing its ids with the split's, row by row. Items are
(feature float32, label, index) as SplitDataset's (image, label, index), the index kept as the sampler drew
it (an environment sampler's tagged index, glt.data.env_index), so the one training loop and every sampler
run unchanged; the backbone is the identity on them (glt.models.feature_backbone)."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import Dataset

from glt.benchmark import Benchmark
from glt.data.env_index import EnvIndex
from glt.errors import GLTError
from glt.features.store import FeatureStore


def check_split(store: FeatureStore, bench: Benchmark, split: str) -> np.ndarray:
    """The split's stored features, (N, D) float16, after checking that the store holds the split complete and
    its rows are the split table's, in order; otherwise one GLTError naming the store and the split."""
    feats = store.features(split)  # an absent or incomplete split is an error naming both
    ids = store.ids(split).astype(str)
    want = np.asarray(bench.split(split).id).astype(str)
    fix = f"run `glt features --benchmark {bench.root}` into another folder for this benchmark"
    if len(ids) != len(want) or len(feats) != len(want):
        raise GLTError(f"feature store {store.root} does not match split '{split}' of benchmark {bench.root}: "
                       f"{len(ids)} rows stored, {len(want)} in the split; {fix}")
    differ = np.flatnonzero(ids != want)
    if len(differ):
        i = int(differ[0])
        raise GLTError(f"feature store {store.root} does not match split '{split}' of benchmark {bench.root}: "
                       f"{len(differ)} rows differ (row {i}: stored id '{ids[i]}', split id '{want[i]}'); {fix}")
    if feats.ndim != 2 or (len(feats) and feats.shape[1] != store.feature_dim):
        raise GLTError(f"feature store {store.root}, split '{split}': features of shape {feats.shape}, expected "
                       f"({len(want)}, {store.feature_dim})")
    return feats


def open_store(path: str | os.PathLike, bench: Benchmark, splits: list[str]) -> FeatureStore:
    """The store at `path`, with every split a run reads checked before anything trains."""
    store = FeatureStore(path)
    for split in splits:
        check_split(store, bench, split)
    return store


class FeatureDataset(Dataset):
    """One split's stored features, read into memory once (float16, half the float32 size), served as float32
    by whole batches (`__getitems__`), as SplitDataset's in-memory path."""

    batched = True

    def __init__(self, store: FeatureStore, benchmark: Benchmark, split: str):
        self.store, self.benchmark, self.split = store, benchmark, split
        self.table = benchmark.split(split)
        feats = check_split(store, benchmark, split)
        # read, not copied from the memory map: the map's pages would count in the RSS beside the copy
        path = getattr(feats, "filename", None)
        self.features = torch.from_numpy(np.load(path) if path else np.array(feats, dtype=np.float16))
        self.labels = torch.as_tensor(self.table.label)
        self.envs = EnvIndex(max(len(self.table), 1))  # how samplers tag an index with its environment

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int):
        row = self.envs.rows(i)
        return self.features[row].float(), int(self.labels[row]), i

    def __getitems__(self, indices: list[int]):
        index = torch.as_tensor(indices, dtype=torch.long)
        row = self.envs.rows(index)
        return self.features[row].float(), self.labels[row], index
