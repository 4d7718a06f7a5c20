"""Decoded-image arrays (benchmark/arrays.py): `glt build digits` writes them, SplitDataset(cache=True)
reads them instead of decoding the PNGs, and the training tensors and weights are the same bit for bit."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

import glt.data.dataset as dataset_module
from conftest import fast_overrides
from glt.benchmark import Benchmark
from glt.benchmark.arrays import ARRAYS_DIR, INDEX, array_file, decoded_array_path, table_digest
from glt.benchmark.directory import split_file
from glt.builders.digits import build_digits
from glt.cli.main import main
from glt.data.dataset import SplitDataset, read_image
from glt.data.transforms import build_batch_transforms
from glt.io import write_json

SMALL = dict(
    imbalance=3, pool_head=100, test_per_class=10, gbl_per_colour=4, val_per_class=5, cbl_per_class=30, heldout_sources=20
)


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> tuple[Path, Path]:
    """A small digits build (with arrays) and a copy of it without the arrays folder."""
    base = tmp_path_factory.mktemp("decoded")
    with_arrays = build_digits(base / "with", **SMALL)
    without = base / "without"
    shutil.copytree(with_arrays, without)
    shutil.rmtree(without / ARRAYS_DIR)
    return with_arrays, without


def no_decoding(monkeypatch):
    """Make any PNG decode by SplitDataset fail: proves that the arrays were read."""

    def refuse(path):
        raise AssertionError(f"decoded {path} although the benchmark holds a decoded array")

    monkeypatch.setattr(dataset_module, "read_image", refuse)


def per_image(bench: Benchmark, split: str, preprocess) -> torch.Tensor:
    """The reference: every PNG decoded and preprocessed on its own."""
    return torch.stack([preprocess(read_image(bench.image_path(p))) for p in bench.split(split).path])


def test_the_build_writes_one_matching_array_per_split(digits):
    root, _ = digits
    bench = Benchmark(root)
    for split in bench.manifest.split_names:
        table = bench.split(split)
        path = decoded_array_path(root, split, table)
        assert path is not None, split
        arr = np.load(path, mmap_mode="r")
        assert arr.dtype == np.uint8 and arr.shape == (len(table), 3, 32, 32)
        png = np.stack([np.asarray(read_image(bench.image_path(p))) for p in table.path])
        assert np.array_equal(arr, png), split  # the PNG pixels, row for row


@pytest.mark.parametrize("image_size", [32, 16])
def test_array_path_gives_the_same_tensors_as_decoding_every_image(digits, image_size, monkeypatch):
    root, without = digits
    preprocess, train_batch, test_batch = build_batch_transforms("small", image_size)
    splits = Benchmark(root).manifest.split_names
    decoded = {s: SplitDataset(Benchmark(without), s, cache=True, preprocess=preprocess, batch_transform=test_batch)
               for s in splits}
    no_decoding(monkeypatch)
    for split in splits:
        a = SplitDataset(Benchmark(root), split, cache=True, preprocess=preprocess, batch_transform=test_batch)
        b = decoded[split]
        assert a._stack.shape == (len(a), 3, image_size, image_size)
        assert torch.equal(a._stack, b._stack), split
        rows = list(range(0, len(a), 3))
        xa, ya, ia = a.__getitems__(rows)
        xb, yb, ib = b.__getitems__(rows)
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(ia, ib)
        # the per-image cache (per-image transforms) reads the same array
        c = SplitDataset(Benchmark(root), split, cache=True, preprocess=preprocess)
        assert torch.equal(c.image(len(c) - 1), b._stack[-1])
    monkeypatch.undo()
    for split in ("glt/train", "cbl/test_gbl"):  # and both equal the image-by-image reference
        assert torch.equal(decoded[split]._stack, per_image(Benchmark(without), split, preprocess))


def test_stacked_preprocess_equals_per_image_preprocess_on_the_tiny_benchmark(tiny_benchmark, tmp_path):
    """The fallback (no arrays) preprocesses one stack when all images have one size; and a decoded
    array written for the tiny benchmark gives the same tensors."""
    copy = tmp_path / "tiny"
    shutil.copytree(tiny_benchmark, copy)
    for size in (16, 12, 20):
        preprocess = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])
        for split in ("glt/train", "glt/test_gbl"):
            ds = SplitDataset(Benchmark(copy), split, cache=True, preprocess=preprocess, batch_transform=lambda x: x)
            assert torch.equal(ds._stack, per_image(Benchmark(copy), split, preprocess)), (size, split)
    bench = Benchmark(copy)
    (copy / ARRAYS_DIR).mkdir()
    index = {}
    for split in ("glt/train", "glt/val"):
        table = bench.split(split)
        np.save(copy / ARRAYS_DIR / array_file(split), per_image(bench, split, lambda x: x).numpy())
        index[split] = {"file": array_file(split), "rows": len(table), "ids_sha256": table_digest(table)}
    write_json(copy / ARRAYS_DIR / INDEX, index)
    preprocess = v2.Compose([v2.Resize(12, antialias=True), v2.CenterCrop(12)])
    for split in ("glt/train", "glt/val"):
        assert decoded_array_path(copy, split, bench.split(split)) is not None
        ds = SplitDataset(Benchmark(copy), split, cache=True, preprocess=preprocess, batch_transform=lambda x: x)
        assert torch.equal(ds._stack, per_image(bench, split, preprocess))
    assert decoded_array_path(copy, "glt/test_glt", bench.split("glt/test_glt")) is None  # no entry


def test_a_stale_array_is_ignored(digits, tmp_path):
    root, _ = digits
    stale = tmp_path / "stale"
    shutil.copytree(root, stale)
    bench = Benchmark(stale)
    split = "glt/val"
    table = bench.split(split)
    path = decoded_array_path(stale, split, table)
    np.save(path, np.zeros_like(np.load(path)))  # if it were read, the images would be black
    # ids changed (a rebuilt table, say), same row count: the hash no longer matches
    changed = table.take(np.arange(len(table)))
    changed.id = np.array([f"{i}_x" for i in table.id], dtype=object)
    changed.write(split_file(stale, split))
    fresh = Benchmark(stale)
    assert decoded_array_path(stale, split, fresh.split(split)) is None
    ds = SplitDataset(fresh, split, cache=True, batch_transform=lambda x: x)
    assert torch.equal(ds._stack, per_image(fresh, split, lambda x: x)) and ds._stack.max() > 0
    # rows reordered: same ids, another order -- stale too
    order = np.arange(len(table))[::-1].copy()
    table.take(order).write(split_file(stale, split))
    fresh = Benchmark(stale)
    assert decoded_array_path(stale, split, fresh.split(split)) is None
    assert torch.equal(SplitDataset(fresh, split, cache=True, batch_transform=lambda x: x)._stack,
                       per_image(fresh, split, lambda x: x))


def test_training_never_writes_into_the_benchmark_and_weights_match_bit_for_bit(digits, tmp_path, monkeypatch):
    root, without = digits

    def listing(folder):
        return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}

    before = listing(root), listing(without)

    def run(bench: Path, out: Path):
        with pytest.raises(SystemExit) as e:
            main(["train", "--benchmark", str(bench), "--method", "ce", "--out", str(out), *fast_overrides(1)])
        assert e.value.code == 0
        return torch.load(out / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)["model"]

    reference = run(without, tmp_path / "png")
    no_decoding(monkeypatch)
    fast = run(root, tmp_path / "arrays")
    assert reference.keys() == fast.keys() and len(reference) > 0
    for key in reference:
        assert torch.equal(reference[key], fast[key]), key
    assert (listing(root), listing(without)) == before


def test_the_demo_layout_owns_the_arrays(digits):
    """`glt demo --overwrite` removes only the files a demo writes: the arrays must count as the demo's."""
    from glt.runtime.run_dir import DIGITS_LAYOUT, scan_layout

    ours, others = scan_layout(digits[0], DIGITS_LAYOUT)
    assert others == [] and any(p.startswith(f"{ARRAYS_DIR}/") for p in ours)
