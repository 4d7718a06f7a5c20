"""A torch Dataset over one split of a benchmark directory."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF

from glt.benchmark import Benchmark
from glt.benchmark.arrays import decoded_array_path
from glt.data.env_index import EnvIndex
from glt.data.image_cache import ImageCache
from glt.errors import GLTError
from glt.io import existing_files


def read_image(path) -> torch.Tensor:
    """Decode an image file to a uint8 (3, H, W) tensor; a file that cannot be read is a GLTError naming it."""
    try:
        with Image.open(path) as im:
            return TF.pil_to_tensor(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise GLTError(f"cannot open image {path}: {e}") from None


class SplitDataset(Dataset):
    """Items are (image, label, index) where index is the row in the split table (for per-sample
    bookkeeping such as IFL's scores), or the tagged index an environment sampler drew (EnvIndex), kept
    as drawn. With `cache=True` every image is decoded once into memory; with `image_cache` (chosen by the
    training set-up, glt.data.image_cache.select_cache) images are read from its resized copies."""

    def __init__(
        self,
        benchmark: Benchmark,
        split: str,
        transform: Callable | None = None,
        cache: bool = False,
        preprocess: Callable | None = None,
        batch_transform: Callable | None = None,
        image_cache: ImageCache | None = None,
    ):
        """`preprocess` is applied once when caching; with `batch_transform` (requires `cache`) whole
        batches are cut from one uint8 tensor and transformed at once (`__getitems__`)."""
        self.benchmark = benchmark
        self.split = split
        self.table = benchmark.split(split)
        self.envs = EnvIndex(max(len(self.table), 1))  # how samplers tag an index with its environment
        self.transform = transform
        self.labels = torch.as_tensor(self.table.label)
        self.image_cache = image_cache
        read = image_cache.path if image_cache is not None else benchmark.image_path
        self._paths = [read(p) for p in self.table.path]
        self._cache: torch.Tensor | list[torch.Tensor] | None = None
        self._stack: torch.Tensor | None = None
        self.batch_transform = batch_transform
        if cache:
            self._cache = self._decode_all(preprocess)
            if batch_transform is not None:
                self._stack = self._cache if isinstance(self._cache, torch.Tensor) else torch.stack(self._cache)

    def _decode_all(self, preprocess: Callable | None) -> torch.Tensor | list[torch.Tensor]:
        """Every image of the split, decoded and preprocessed: one (N, 3, H, W) tensor when the benchmark
        holds a matching decoded array (benchmark/arrays.py) or all images have one size, else a list.
        `preprocess` runs once over the whole stack (torchvision v2 transforms take batches)."""
        stack = None
        # the arrays hold the original pixels: not when an image cache (resized copies) is being read
        if self.image_cache is None:
            path = decoded_array_path(self.benchmark.root, self.split, self.table)
            if path is not None:
                try:
                    arr = np.load(path, mmap_mode="r")
                except (OSError, ValueError):
                    arr = None
                if arr is not None and arr.dtype == np.uint8 and arr.ndim == 4 and arr.shape[:2] == (len(self.table), 3):
                    stack = torch.from_numpy(np.array(arr))  # one copy into memory
        if stack is None:
            images = [read_image(p) for p in self._paths]
            if not images or len({tuple(im.shape) for im in images}) > 1:
                return [preprocess(im) for im in images] if preprocess else images
            stack = torch.stack(images)
        return preprocess(stack) if preprocess else stack

    def __len__(self) -> int:
        return len(self.table)

    def image(self, i: int) -> torch.Tensor:
        return self._cache[i] if self._cache is not None else read_image(self._paths[i])

    def __getitem__(self, i: int):
        row = self.envs.rows(i)
        img = self.image(row)
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.table.label[row]), i

    def __getitems__(self, indices: list[int]):
        """A whole batch at once (used by DataLoader when defined); falls back to per-item reads."""
        if self._stack is None:
            return [self[i] for i in indices]
        index = torch.as_tensor(indices, dtype=torch.long)
        row = self.envs.rows(index)
        images = self.batch_transform(self._stack[row])
        return images, self.labels[row], index

    @property
    def batched(self) -> bool:
        return self._stack is not None

    def check_images(self) -> None:
        """Fail early, naming the file, if an image is missing (one listing per folder, not a stat per image)."""
        found = existing_files([str(p) for p in self._paths])
        if not found.all():
            raise GLTError(f"image not found: {self._paths[int(np.argmin(found))]} (split {self.split})")


def _already_collated(batch):
    return batch


def make_loader(dataset: SplitDataset, batch_size: int, **kwargs) -> DataLoader:
    """A DataLoader over a split; batched datasets deliver whole batches from `__getitems__`."""
    if getattr(dataset, "batched", False):
        kwargs["collate_fn"] = _already_collated
    return DataLoader(dataset, batch_size=batch_size, **kwargs)
