"""A resized JPEG copy of every image of a benchmark, so that decoding keeps up with training at 112 px.

    DIR/cache/s<SHORT>_q<QUALITY>/<relative image path>[.jpg]   one copy per image, short side SHORT
    DIR/cache/s<SHORT>_q<QUALITY>/cache.json                    marker, written last: the cache is complete

Images given by absolute paths (imported benchmarks that point at an ImageNet folder) or by relative
paths that leave the benchmark folder are mirrored under `_absolute/`. A name that does not end in
.jpg/.jpeg gets `.jpg` appended, so `a.png` and `a.jpg` never land on the same file.

The marker records the SHA-256 of every split table: a cache built for other split tables is not used.
A benchmark only describes what is on disk; the training set-up (glt.engine.trainer.Setup) picks the
cache once (`select_cache`) and hands it to its datasets, which then read the cached copy whenever a
complete cache is large enough for the training image size (never by itself for "small" benchmarks,
decoded into memory once). The run setting `data.image_cache=off` (or a short side, or a folder name such
as `s128_q90`) overrides that choice; the environment variable `GLT_IMAGE_CACHE` does the same for every
run without it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from glt.benchmark import Benchmark
from glt.benchmark.directory import split_file
from glt.errors import GLTError
from glt.io import atomic_path, existing_files, file_mode, read_json, write_json

CACHE_DIR = "cache"
MARKER = "cache.json"
FORMAT = "glt-image-cache"
VERSION = 1
ABSOLUTE = "_absolute"
ENV = "GLT_IMAGE_CACHE"
JPEG_SUFFIXES = (".jpg", ".jpeg")
RESAMPLE = Image.Resampling.LANCZOS
_NAME = re.compile(r"^s(\d+)_q(\d+)$")
OFF = ("off", "none", "false", "0", "no")


def cache_name(short_side: int, quality: int) -> str:
    return f"s{short_side}_q{quality}"


def cached_relpath(root: str, path: str) -> str:
    """Where the image of a split row (`path` as stored in the table) lies inside a cache folder of the
    benchmark at `root` (an absolute path). String operations only: it runs once per row when a dataset
    opens a split."""
    rel = os.path.normpath(path)
    if os.path.isabs(rel) or rel == os.pardir or rel.startswith(os.pardir + os.sep):
        full = rel if os.path.isabs(rel) else os.path.normpath(os.path.join(root, rel))
        rel = ABSOLUTE + os.sep + os.path.splitdrive(full)[1].lstrip(os.sep)
    return rel if rel.lower().endswith(JPEG_SUFFIXES) else rel + ".jpg"


def needed_short_side(style: str, image_size: int) -> int:
    """The smallest short side a cached copy may have for training at `image_size`: the size the test
    transform resizes to before its centre crop (glt.data.transforms.build_transforms: 128 for 112 px
    on "imagenet" benchmarks), so evaluation never upsamples a cached copy."""
    return round(image_size * 128 / 112) if style == "imagenet" else int(image_size)


def split_fingerprints(bench) -> dict[str, str]:
    """SHA-256 of each split table file of the benchmark (tens of MB at ImageNet scale: ~0.1 s)."""
    out = {}
    for name in bench.manifest.split_names:
        h = hashlib.sha256()
        try:
            with open(split_file(bench.root, name), "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        except OSError:
            continue  # Benchmark.split reports a missing table when it is read
        out[name] = h.hexdigest()
    return out


@dataclass(frozen=True)
class ImageCache:
    """One complete cache folder of a benchmark."""

    root: str  # the benchmark folder, absolute
    folder: Path
    short_side: int
    quality: int

    def path(self, path: str) -> Path:
        return self.folder / cached_relpath(self.root, path)


# ---- finding a cache --------------------------------------------------------------------------------


def _read_marker(folder: Path) -> dict | None:
    try:
        marker = read_json(folder / MARKER, "image cache marker")
    except GLTError:
        return None
    ok = isinstance(marker, dict) and marker.get("format") == FORMAT and isinstance(marker.get("splits"), dict)
    return marker if ok else None


def complete_caches(bench) -> list[ImageCache]:
    """The complete caches of a benchmark (marker present, built for the current split tables), smallest
    short side first (then highest quality). One listing of DIR/cache; nothing per image."""
    base = bench.root / CACHE_DIR
    try:
        names = sorted(e.name for e in os.scandir(base) if e.is_dir() and _NAME.match(e.name))
    except OSError:
        return []
    found, fingerprints = [], None
    for name in names:
        marker = _read_marker(base / name)
        if marker is None:
            continue
        if fingerprints is None:
            fingerprints = split_fingerprints(bench)
        if marker["splits"] != fingerprints:
            continue
        s, q = (int(g) for g in _NAME.match(name).groups())
        found.append(ImageCache(os.path.abspath(bench.root), base / name, s, q))
    return sorted(found, key=lambda c: (c.short_side, -c.quality))


def select_cache(bench, choice: str | int | None = None, image_size: int | None = None) -> ImageCache | None:
    """The cache a benchmark's datasets read, or None for the original images.

    choice: "auto" (None: the GLT_IMAGE_CACHE environment variable, else "auto") -- the complete cache
    with the smallest short side >= `needed_short_side` for `image_size` (default: the manifest's), none
    for "small" benchmarks (their images are decoded once into memory);
    "off" -- the originals; a short side (128) or a folder name (s128_q90) -- that cache, which must be
    complete (a GLTError otherwise)."""
    if choice is None:
        choice = os.environ.get(ENV, "").strip() or "auto"
    if choice is False or str(choice).lower() in OFF:
        return None
    m = bench.manifest
    if str(choice).lower() == "auto" and m.image_style == "small":
        return None  # decoded once into memory anyway: a lossy copy would change pixels for no speed
    caches = complete_caches(bench)
    if str(choice).lower() == "auto":
        need = needed_short_side(m.image_style, image_size or m.image_size)
        return next((c for c in caches if c.short_side >= need), None)
    text = str(choice)
    picked = [c for c in caches if c.folder.name == text or text.isdigit() and c.short_side == int(text)]
    if not picked:
        have = ", ".join(c.folder.name for c in caches) or "none"
        raise GLTError(
            f"no complete image cache '{text}' in {bench.root / CACHE_DIR} (complete caches: {have}; "
            f"build one with: glt cache --benchmark {bench.root})"
        )
    return picked[0]  # the same short side at two qualities: the better one (sorted first)


# ---- writing a cache --------------------------------------------------------------------------------


def resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Keep the aspect ratio, short side `short_side`, never upscale."""
    short = min(width, height)
    if short <= short_side:
        return width, height
    scale = short_side / short
    if width <= height:
        return short_side, max(1, round(height * scale))
    return max(1, round(width * scale)), short_side


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def cache_image(src: str, dst: str, short_side: int, quality: int) -> None:
    """Write the resized JPEG copy of `src` at `dst` (atomically). A JPEG that needs no resizing is
    copied byte for byte (after a full decode, so a corrupt file is still caught)."""
    try:
        with Image.open(src) as im:
            size = resized_size(im.width, im.height, short_side)
            copy = im.format == "JPEG" and size == im.size
            if not copy:
                # JPEG: let libjpeg decode at 1/2, 1/4 or 1/8 scale while that stays >= twice the target,
                # a cheap first reduction; Lanczos does the rest
                im.draft("RGB", (2 * size[0], 2 * size[1]))
            im.load()
            if not copy:
                out = im.convert("RGB")
                if out.size != size:
                    out = out.resize(size, RESAMPLE)
    except FileNotFoundError:
        raise GLTError(f"image not found: {src}") from None
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
        raise GLTError(f"cannot read image {src}: {_one_line(e)}") from None
    with atomic_path(dst) as tmp:
        if copy:
            shutil.copyfile(src, tmp)
        else:
            out.save(tmp, "JPEG", quality=quality, optimize=True)
        os.chmod(tmp, file_mode())  # the umask's mode, not the temporary file's 0600


def _cache_chunk(tasks: list[tuple[str, str]], short_side: int, quality: int) -> int:
    for src, dst in tasks:
        cache_image(src, dst, short_side, quality)
    return len(tasks)


def default_workers() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(32, cpus))


@dataclass
class CacheResult:
    folder: Path
    images: int  # distinct images of the benchmark
    written: int  # written by this run (the rest were already there)
    in_memory: bool  # the benchmark's style decodes every image into memory during training anyway


def build_cache(
    benchmark,
    short_side: int = 128,
    quality: int = 90,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    chunk_size: int = 64,
) -> CacheResult:
    """Write DIR/cache/s<short_side>_q<quality>: a resized JPEG copy of every image of every split (an
    image shared by several splits once), in parallel, skipping copies already written (re-running
    after an interruption resumes), then the marker. `overwrite` rewrites every copy."""
    bench = benchmark if isinstance(benchmark, Benchmark) else Benchmark(benchmark)
    if isinstance(short_side, bool) or not isinstance(short_side, (int, np.integer)) or short_side < 1:
        raise GLTError(f"short side must be a positive integer, got {short_side!r}")
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise GLTError(f"JPEG quality must be an integer between 1 and 100, got {quality!r}")
    workers = default_workers() if workers is None else int(workers)
    folder = bench.root / CACHE_DIR / cache_name(int(short_side), int(quality))

    rel = np.unique(np.concatenate([bench.split(n).path for n in bench.manifest.split_names] or [np.array([])]))
    root = os.path.abspath(bench.root)
    sources = np.array([os.path.normpath(bench.source_image_path(p)) for p in rel], dtype=object)
    _, first = np.unique(sources, return_index=True)  # "a.jpg", "./a.jpg", "/abs/root/a.jpg": one image
    sources, rel = sources[np.sort(first)], rel[np.sort(first)]
    targets = np.array([str(folder / cached_relpath(root, p)) for p in rel], dtype=object)
    uniq, counts = np.unique(targets, return_counts=True)
    if (counts > 1).any():
        clash = uniq[np.argmax(counts > 1)]
        raise GLTError(f"two images of {bench.root} map to the same cached file {clash}; rename one of them")

    found = existing_files(list(sources)) if len(sources) else np.zeros(0, bool)
    if not found.all():
        miss = int((~found).sum())
        more = f" (and {miss - 1} more missing)" if miss > 1 else ""
        raise GLTError(f"image not found: {sources[int(np.argmin(found))]}{more}")

    marker = folder / MARKER
    marker.unlink(missing_ok=True)  # from here until the last copy is written the cache is incomplete
    todo = np.ones(len(targets), bool) if overwrite or not len(targets) else ~existing_files(list(targets))
    tasks = list(zip(sources[todo].tolist(), targets[todo].tolist()))
    chunks = [tasks[i : i + chunk_size] for i in range(0, len(tasks), chunk_size)]
    bar = tqdm(total=len(tasks), desc=f"caching images ({folder.name})", unit="img", disable=None if progress else True)
    with bar:
        if workers <= 1 or len(chunks) <= 1:
            for chunk in chunks:
                bar.update(_cache_chunk(chunk, short_side, quality))
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(chunks))) as ex:
                pending = {ex.submit(_cache_chunk, c, short_side, quality) for c in chunks}
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for f in done:
                        if f.exception() is not None:
                            for p in pending:
                                p.cancel()
                            raise f.exception()
                        bar.update(f.result())
    write_json(marker, {
        "format": FORMAT,
        "version": VERSION,
        "short_side": int(short_side),
        "quality": int(quality),
        "images": len(targets),
        "resample": "lanczos",
        "benchmark": bench.name,
        "splits": split_fingerprints(bench),
    })
    os.chmod(marker, file_mode())
    return CacheResult(folder, len(targets), len(tasks), bench.manifest.image_style == "small")
