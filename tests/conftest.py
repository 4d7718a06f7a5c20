"""Shared fixtures: a tiny generated benchmark (random coloured squares) for fast end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glt.benchmark import Manifest, SplitTable, write_benchmark

SPLITS = {
    "glt": ("train", "val", "test_glt", "test_cbl", "test_gbl"),
    "cbl": ("train", "val", "test_cbl", "test_gbl"),
}


def make_tiny_benchmark(root: Path, num_classes: int = 4, seed: int = 0, size: int = 16) -> Path:
    """Images whose class is the position of a bright square and whose attribute is its colour,
    so a small model learns it in a few steps. Train-GLT is long-tailed; tests are balanced."""
    rng = np.random.default_rng(seed)
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    counter = [0]

    def sample(label: int, attr: int) -> tuple[str, str]:
        img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        q = size // 2
        r0, c0 = divmod(label % 4, 2)
        img[r0 * q : r0 * q + q, c0 * q : c0 * q + q] = colours[attr]
        i = counter[0]
        counter[0] += 1
        rel = f"images/{i:05d}.png"
        Image.fromarray(img).save(root / rel)
        return f"s{i:05d}", rel

    def table(counts, attr_ratio) -> SplitTable:
        rows = []
        for c, n in enumerate(counts):
            attrs = rng.choice(3, size=n, p=attr_ratio)
            for a in attrs:
                rows.append((*sample(c, int(a)), c, 0 if c < num_classes // 2 else (1 if c < num_classes - 1 else 2), int(a)))
        ids, paths, labels, freq, attr = zip(*rows)
        return SplitTable(np.array(ids), np.array(paths), labels, freq, attr)

    lt = [max(4, int(40 * 0.5**c)) for c in range(num_classes)]
    skew = [0.8, 0.15, 0.05]
    flat = [1 / 3] * 3
    splits = {
        "glt/train": table(lt, skew),
        "glt/val": table([6] * num_classes, skew),
        "glt/test_glt": table([6] * num_classes, skew),
        "glt/test_cbl": table([8] * num_classes, skew),
        "glt/test_gbl": table([9] * num_classes, flat),
        "cbl/train": table([20] * num_classes, skew),
        "cbl/val": table([6] * num_classes, skew),
    }
    splits["cbl/test_cbl"] = splits["glt/test_cbl"]
    splits["cbl/test_gbl"] = splits["glt/test_gbl"]
    manifest = Manifest(
        name="tiny", classes=[f"class{c}" for c in range(num_classes)], num_attributes=3,
        image_style="small", image_size=size, info={"generator": "tests/conftest.py", "seed": seed},
    )
    write_benchmark(root, manifest, splits)
    return root


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models on a 2-core machine run faster (and steadier) on one thread."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_benchmark(tmp_path_factory) -> Path:
    return make_tiny_benchmark(tmp_path_factory.mktemp("bench") / "tiny")


def fast_overrides(epochs: int = 2) -> list[str]:
    return [f"epochs={epochs}", "model.backbone=small_cnn", "data.batch_size=16", "data.num_workers=0", "progress=false"]
