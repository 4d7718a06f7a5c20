"""glt cache: resized JPEG copies of a benchmark's images, read transparently by the datasets."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_tiny_benchmark
from glt.benchmark import Benchmark, Manifest, SplitTable, write_benchmark
from glt.cli.main import main
from glt.data import SplitDataset, build_transforms
from glt.data.image_cache import ENV, MARKER, build_cache, select_cache
from glt.errors import GLTError

# (width, height, format, mode): landscape, portrait, square, smaller than the short side (never
# upscaled), a JPEG that needs no resizing (copied), grayscale and palette sources
SHAPES = [
    (150, 100, "JPEG", "RGB"), (90, 140, "PNG", "RGB"), (120, 120, "JPEG", "L"), (40, 30, "PNG", "RGB"),
    (64, 48, "JPEG", "RGB"), (201, 67, "PNG", "P"), (77, 250, "JPEG", "RGB"),
]


def _dataset(root, split, *args, choice=None, **kwargs) -> SplitDataset:
    """A dataset as the training set-up opens it: the image cache chosen once (glt.engine.trainer.Setup)."""
    bench = Benchmark(root)
    return SplitDataset(bench, split, *args, image_cache=select_cache(bench, choice), **kwargs)


def _smooth_image(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Low-frequency colour fields (natural-image-like, so JPEG and resampling errors stay small)."""
    coarse = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC))


def make_photo_benchmark(root: Path, seed: int = 0) -> Path:
    """An "imagenet"-style benchmark of a few images of assorted sizes and formats, some shared by
    several splits (Test-CBL / Test-GBL of both tracks, and one image in two tracks' training sets)."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(14):
        w, h, fmt, mode = SHAPES[i % len(SHAPES)]
        rel = f"images/c{i % 2}/{i:03d}.{'jpg' if fmt == 'JPEG' else 'png'}"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        im = Image.fromarray(_smooth_image(rng, w, h))
        im = im.convert(mode, palette=Image.Palette.ADAPTIVE) if mode == "P" else im.convert(mode)
        im.save(root / rel, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        paths.append(rel)

    def table(idx) -> SplitTable:
        idx = list(idx)
        return SplitTable(np.array([f"i{i}" for i in idx]), np.array([paths[i] for i in idx]),
                          [i % 2 for i in idx], [0] * len(idx), [0] * len(idx))

    splits = {
        "glt/train": table(range(6)), "glt/val": table([6]), "glt/test_glt": table([7]),
        "glt/test_cbl": table([8, 9]), "glt/test_gbl": table([10, 11]),
        "cbl/train": table([5, 12]), "cbl/val": table([13]),
    }
    splits["cbl/test_cbl"], splits["cbl/test_gbl"] = splits["glt/test_cbl"], splits["glt/test_gbl"]
    manifest = Manifest(name="photos", classes=["a", "b"], image_style="imagenet", image_size=56)
    write_benchmark(root, manifest, splits)
    return root


@pytest.fixture
def photos(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv(ENV, raising=False)
    return make_photo_benchmark(tmp_path / "photos")


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _sources(root: Path) -> list[Path]:
    return sorted(p for p in (root / "images").rglob("*") if p.is_file())


def test_cache_written_once_per_image_with_sizes(photos):
    r = build_cache(photos, short_side=64, quality=90, workers=1, progress=False)
    folder = photos / "cache" / "s64_q90"
    assert r.folder == folder and r.images == 14 and r.written == 14 and not r.in_memory
    meta = json.loads((folder / MARKER).read_text())
    assert (meta["short_side"], meta["quality"], meta["images"]) == (64, 90, 14)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MARKER)
    assert len(files) == 14  # shared images once
    for src in _sources(photos):
        rel = src.relative_to(photos)
        dst = folder / (str(rel) if src.suffix == ".jpg" else f"{rel}.jpg")
        with Image.open(src) as a, Image.open(dst) as b:
            assert b.format == "JPEG"
            w, h = a.size
            short = min(w, h)
            if short <= 64:  # never upscaled
                assert b.size == (w, h)
            else:
                assert min(b.size) == 64
                long_expected = max(w, h) * 64 / short
                assert abs(max(b.size) - long_expected) <= 0.5
                assert (b.width >= b.height) == (w >= h)


def test_cached_pixels_match_a_direct_resize(photos):
    """Against an independent reference: Pillow's Lanczos resize of the original, as float."""
    build_cache(photos, short_side=64, workers=1, progress=False)
    folder = photos / "cache" / "s64_q90"
    for src in _sources(photos):
        rel = src.relative_to(photos)
        dst = folder / (str(rel) if src.suffix == ".jpg" else f"{rel}.jpg")
        with Image.open(src) as a, Image.open(dst) as b:
            cached = np.asarray(b.convert("RGB"), dtype=np.float64)
            ref = np.asarray(a.convert("RGB").resize(b.size, Image.Resampling.LANCZOS), dtype=np.float64)
        assert np.abs(cached - ref).mean() < 5.0, src  # JPEG 4:2:0 at quality 90: ~1-4 levels


def test_rerun_is_byte_identical_and_resumes(photos):
    build_cache(photos, short_side=64, workers=1, progress=False)
    folder = photos / "cache" / "s64_q90"
    first = _digests(folder)
    build_cache(photos, short_side=64, workers=2, overwrite=True, progress=False, chunk_size=3)
    assert _digests(folder) == first  # same settings, parallel or not: same bytes

    victims = sorted(p for p in folder.rglob("*.jpg"))[::3]
    kept = {p: p.stat().st_mtime_ns for p in folder.rglob("*.jpg") if p not in victims}
    for p in victims:
        p.unlink()
    r = build_cache(photos, short_side=64, workers=1, progress=False)
    assert r.written == len(victims)
    assert _digests(folder) == first
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # not rewritten


def test_datasets_read_the_cache(photos, monkeypatch):
    orig = [p for p in _dataset(photos, "glt/train")._paths]
    assert all(Path(p).is_relative_to(photos / "images") for p in orig)
    build_cache(photos, short_side=64, workers=1, progress=False)  # manifest 56 px: needs >= 64
    folder = photos / "cache" / "s64_q90"
    for split in ("glt/train", "glt/test_gbl", "cbl/val"):
        ds = _dataset(photos, split)
        assert all(Path(p).is_relative_to(folder) and Path(p).is_file() for p in ds._paths)
    # the test transform sees nearly the same image from the copy as from the original
    _, test_tf = build_transforms("imagenet", 56)
    ds = _dataset(photos, "glt/train", test_tf)
    ds_orig = _dataset(photos, "glt/train", test_tf, choice="off")
    for i in range(len(ds)):
        a, b = ds[i][0], ds_orig[i][0]
        assert a.shape == b.shape == (3, 56, 56)
        assert (a - b).abs().mean() < 0.1  # normalised units: ~0.025 of the 0-1 range
    monkeypatch.setenv(ENV, "off")
    assert all(Path(p).is_relative_to(photos / "images") for p in _dataset(photos, "glt/val")._paths)


def test_the_training_set_up_picks_the_cache_once(photos, monkeypatch):
    """The engine chooses (data.image_cache, else $GLT_IMAGE_CACHE, else the best complete cache) and hands the
    choice to every dataset it opens; the benchmark itself always names the originals."""
    from conftest import fast_overrides
    from glt.config import build_config
    from glt.engine.trainer import Setup

    build_cache(photos, short_side=64, workers=1, progress=False)
    folder = photos / "cache" / "s64_q90"

    def paths(*over):
        setup = Setup(build_config(method="ce", benchmark=str(photos), overrides=[*fast_overrides(1), *over]))
        return [Path(p) for split in ("glt/train", "glt/val") for p in setup.dataset(split, train=False)._paths]

    assert all(p.is_relative_to(folder) for p in paths())
    assert all(p.is_relative_to(photos / "images") for p in paths("data.image_cache=off"))
    bench = Benchmark(photos)
    assert all(bench.image_path(p) == photos / p for p in bench.split("glt/train").path)
    monkeypatch.setenv(ENV, "off")
    assert all(p.is_relative_to(photos / "images") for p in paths())
    assert all(p.is_relative_to(folder) for p in paths("data.image_cache=s64_q90"))


def test_smallest_large_enough_cache_is_chosen(photos):
    build_cache(photos, short_side=48, workers=1, progress=False)
    bench = Benchmark(photos)
    assert select_cache(bench) is None  # 56 px needs a short side >= 64: too small
    assert select_cache(bench, image_size=42).short_side == 48
    build_cache(photos, short_side=100, quality=80, workers=1, progress=False)
    build_cache(photos, short_side=100, workers=1, progress=False)
    build_cache(photos, short_side=80, workers=1, progress=False)
    assert select_cache(Benchmark(photos)).short_side == 80
    assert select_cache(Benchmark(photos), image_size=84).folder.name == "s100_q90"
    assert select_cache(Benchmark(photos), 100).folder.name == "s100_q90"
    assert select_cache(Benchmark(photos), "s100_q80").quality == 80
    assert select_cache(Benchmark(photos), "s48_q90").short_side == 48
    with pytest.raises(GLTError, match="no complete image cache '64'"):
        select_cache(Benchmark(photos), 64)


def test_incomplete_or_stale_cache_is_not_used(photos):
    build_cache(photos, short_side=64, workers=1, progress=False)
    marker = photos / "cache" / "s64_q90" / MARKER
    marker.unlink()  # as after an interrupted run
    assert select_cache(Benchmark(photos)) is None
    build_cache(photos, short_side=64, workers=1, progress=False)
    assert select_cache(Benchmark(photos)) is not None
    # the split tables change (a rebuilt benchmark): the cache no longer describes them
    bench = Benchmark(photos)
    tables = {n: bench.split(n) for n in bench.manifest.split_names}
    tables["glt/val"] = tables["glt/val"].take(np.array([0, 0]))
    write_benchmark(photos, bench.manifest, tables)
    assert select_cache(Benchmark(photos)) is None


def test_absolute_and_outside_paths_are_mirrored(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    root = make_photo_benchmark(tmp_path / "photos")
    outside = tmp_path / "elsewhere"
    shutil.move(root / "images", outside)
    bench = Benchmark(root)
    tables = {n: bench.split(n) for n in bench.manifest.split_names}
    for t in tables.values():  # half absolute, half relative leaving the benchmark folder
        t.path = np.array([str(tmp_path / "elsewhere" / p[7:]) if i % 2 else "../elsewhere/" + p[7:]
                           for i, p in enumerate(t.path)], dtype=object)
    write_benchmark(root, bench.manifest, tables)
    r = build_cache(root, short_side=64, workers=1, progress=False)
    assert r.images == 14  # "../elsewhere/x" and "/.../elsewhere/x" are one image
    ds = _dataset(root, "glt/train")
    assert all(Path(p).is_relative_to(root / "cache" / "s64_q90" / "_absolute") and Path(p).is_file()
               for p in ds._paths)


def test_corrupt_or_missing_image_is_a_one_line_cli_error(photos, capsys):
    bad = photos / "images" / "c1" / "003.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(SystemExit) as e:
        main(["cache", "--benchmark", str(photos), "--short-side", "64", "--workers", "2"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("glt: error: cannot read image") and str(bad) in err
    assert not (photos / "cache" / "s64_q90" / MARKER).exists()
    assert select_cache(Benchmark(photos)) is None
    with pytest.raises(GLTError, match=re.escape(f"cannot read image {bad}")):  # from a worker process
        build_cache(photos, short_side=64, workers=2, chunk_size=2, progress=False)
    assert not (photos / "cache" / "s64_q90" / MARKER).exists()

    bad.unlink()
    with pytest.raises(SystemExit) as e:
        main(["cache", "--benchmark", str(photos), "--short-side", "64"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"glt: error: image not found: {bad}"


@pytest.mark.parametrize("args, message", [
    (["--short-side", "0"], "short side must be a positive integer"),
    (["--quality", "101"], "JPEG quality must be an integer between 1 and 100"),
])
def test_bad_settings(photos, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        main(["cache", "--benchmark", str(photos), *args])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_cli_on_an_in_memory_benchmark_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    root = make_tiny_benchmark(tmp_path / "tiny")  # not the shared fixture: its datasets would read the cache
    with pytest.raises(SystemExit) as e:
        main(["cache", "--benchmark", str(root), "--short-side", "16", "--workers", "1"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "decodes once into memory" in out
    n = len(set(np.concatenate([Benchmark(root).split(s).path for s in Benchmark(root).manifest.split_names])))
    assert f": {n} images ({n} written, 0 already there)" in out
    ds = _dataset(root, "glt/train", cache=True)  # lossy copies: not chosen by themselves
    assert all(Path(p).is_relative_to(root / "images") for p in ds._paths)
    monkeypatch.setenv(ENV, "s16_q90")
    ds = _dataset(root, "glt/train", cache=True)
    assert all(Path(p).is_relative_to(root / "cache" / "s16_q90") for p in ds._paths)
    assert isinstance(ds.image(0), torch.Tensor)


def test_run_setting_picks_the_cache_for_training(photos):
    """`data.image_cache` reaches the datasets a run trains and evaluates on."""
    from glt.config import build_config
    from glt.engine.trainer import Setup

    build_cache(photos, short_side=64, workers=1, progress=False)
    base = ["model.backbone=small_cnn", "data.num_workers=0", "progress=false", "device=cpu"]
    for setting, inside in (("auto", photos / "cache" / "s64_q90"), ("off", photos / "images")):
        setup = Setup(build_config(benchmark=str(photos), overrides=[*base, f"data.image_cache={setting}"]))
        for split, train in (("glt/train", True), ("glt/test_gbl", False)):
            paths = setup.dataset(split, train=train)._paths
            assert all(Path(p).is_relative_to(inside) for p in paths), (setting, split)
