"""Run a backbone once over every split of a benchmark and store its features (glt.features.store).

Resumable: each split's (N, D) float16 .npy is preallocated and filled in place, batch by batch; every
`chunk_rows` rows the memory map is flushed and then the split's progress record is replaced atomically,
so a killed run loses at most one chunk and a re-run with the same settings continues from the record.
A store made with other settings (backbone, weights, transform, benchmark rows) is refused, never mixed."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from glt import __version__
from glt.benchmark import Benchmark
from glt.data import make_loader
from glt.data.image_cache import select_cache
from glt.errors import GLTError, first_line
from glt.features.contamination import contamination
from glt.features.inputs import describe, eval_dataset, eval_steps
from glt.features.store import FORMAT, RECORD, VERSION, FeatureStore, read_progress, read_record, split_files
from glt.io import atomic_path, write_json
from glt.models import create_backbone
from glt.runtime.layout import STORE_LAYOUT
from glt.runtime.owned_files import check_layout_folder

AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "none": None}
# record keys that must agree for a re-run to continue a store
IDENTITY = ("backbone", "weights", "weights_name", "weights_sha256", "options", "seed", "transform", "feature_dim",
            "amp")
FLOAT16_MAX = float(np.finfo(np.float16).max)


def training_image_size(manifest) -> int:
    """The image size a training run on this benchmark feeds its backbone by default (the benchmark style's
    `data.image_size`, else the manifest's): a store of a backbone trained by glt must see what it saw."""
    from glt.config import STYLE_PRESETS

    return int(STYLE_PRESETS.get(manifest.image_style, {}).get("data", {}).get("image_size") or manifest.image_size)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ids_digest(ids: np.ndarray) -> str:
    h = hashlib.sha256()
    for i in ids:
        h.update(str(i).encode() + b"\n")
    return h.hexdigest()


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise GLTError(f"--device: unknown device '{device}' (cpu, cuda, cuda:1, mps, auto)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GLTError(f"--device {device}: CUDA is not available here")
    return dev


def _check_same(old: dict, new: dict, out: Path) -> None:
    for key in IDENTITY:
        if old.get(key) != new.get(key):
            raise GLTError(f"feature store {out} was made with other settings ({key}: {old.get(key)!r}, now "
                           f"{new.get(key)!r}); use another --out, or --overwrite to replace it")
    for name, split in new["splits"].items():
        was = old.get("splits", {}).get(name)
        if was is not None and was != split:
            raise GLTError(f"feature store {out}: split '{name}' of the benchmark has changed since its features were "
                           f"stored ({was['rows']} rows then, {split['rows']} now, or other ids); use --overwrite")


def _remove_store(out: Path) -> None:
    """--overwrite: remove only what a store holds (its record and split files), never other files."""
    try:
        old = read_record(out)
    except GLTError:
        return
    for name in old.get("splits", {}):
        for f in split_files(out, name):
            f.unlink(missing_ok=True)
    (out / RECORD).unlink()


def _amp(amp: str, device: torch.device):
    if amp not in AMP_DTYPES:
        raise GLTError(f"--amp must be one of {', '.join(AMP_DTYPES)}, not '{amp}'")
    dtype = AMP_DTYPES[amp] if device.type == "cuda" else None  # autocast on CUDA only
    return dtype, (amp if dtype is not None else "none")


def _store_split(model, ds, files, rows: int, dim: int, batch_size: int, device, amp_dtype, chunk_rows: int,
                 num_workers: int, progress: bool, on_chunk: Callable | None, name: str) -> dict:
    npy, ids_file, prog_file = files
    state = read_progress(prog_file)
    if state is not None and state.get("complete") and npy.is_file():
        return state
    npy.parent.mkdir(parents=True, exist_ok=True)
    if not rows:
        np.save(npy, np.zeros((0, dim), np.float16))
        np.save(ids_file, ds.table.id.astype(str))
        state = {"rows": 0, "rows_done": 0, "complete": True, "seconds": 0.0}
        write_json(prog_file, state)
        return state
    start = state["rows_done"] if state is not None and npy.is_file() else 0
    try:
        feats = np.lib.format.open_memmap(npy, mode="r+") if start else None
    except (OSError, ValueError):
        feats, start = None, 0
    if feats is not None and feats.shape != (rows, dim):
        feats, start = None, 0
    if feats is None:  # a fresh split: preallocate, ids first (they never change)
        np.save(ids_file, ds.table.id.astype(str))
        feats = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float16, shape=(rows, dim))
        write_json(prog_file, {"rows": rows, "rows_done": 0, "complete": False})
    seconds = float(state.get("seconds", 0.0)) if start and state else 0.0
    loader = make_loader(ds, batch_size, sampler=range(start, rows), num_workers=num_workers,
                         pin_memory=device.type == "cuda", persistent_workers=False)
    done, committed, t0 = start, start, time.perf_counter()
    bar = tqdm(total=rows, initial=start, desc=name, unit="img", disable=not progress or None, leave=False)

    def commit(complete: bool) -> None:
        nonlocal committed
        feats.flush()  # rows on disk before the record says so
        elapsed = seconds + time.perf_counter() - t0
        write_json(prog_file, {"rows": rows, "rows_done": done, "complete": complete, "seconds": round(elapsed, 3)})
        committed = done

    with torch.inference_mode(), bar:
        for batch in loader:
            images = batch[0].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                out = model(images)
            out = out.float().cpu().numpy()
            if out.shape != (len(images), dim):
                raise GLTError(f"backbone output of shape {tuple(out.shape)}, expected ({len(images)}, {dim})")
            if not np.isfinite(out).all() or np.abs(out).max() > FLOAT16_MAX:
                raise GLTError(f"split {name}, rows {done}-{done + len(out) - 1}: features are not finite or exceed "
                               f"float16's range ({FLOAT16_MAX:g}); try --amp bf16 or --amp none")
            feats[done: done + len(out)] = out.astype(np.float16)
            done += len(out)
            bar.update(len(out))
            if done - committed >= chunk_rows:
                commit(False)
                if on_chunk is not None:
                    on_chunk(name, done)  # a test hook (an exception here stands for a kill)
    commit(True)
    return read_progress(prog_file)


def _copy_same_rows(out: Path, name: str, splits: dict) -> bool:
    """A split with the same ids as a complete one (a test split both tracks share) gets a copy of its files."""
    npy, ids, prog = split_files(out, name)
    done = read_progress(prog)
    if done is not None and done.get("complete") and npy.is_file():
        return True
    for other, info in splits.items():
        o_npy, o_ids, o_prog = split_files(out, other)
        state = read_progress(o_prog)
        if other == name or info != splits[name] or not (state and state.get("complete") and o_npy.is_file()):
            continue
        npy.parent.mkdir(parents=True, exist_ok=True)
        for src, dst in ((o_ids, ids), (o_npy, npy)):
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
        write_json(prog, {**state, "copied_from": other})
        return True
    return False


def extract_features(
    benchmark: str | os.PathLike, backbone: str, out: str | os.PathLike, weights: str | None = None,
    weights_file: str | None = None, splits: list[str] | None = None, batch_size: int = 64,
    device: str | None = "auto", image_size: int | None = None, num_workers: int = 0, amp: str = "fp16",
    options: dict | None = None, image_cache: str | None = None, seed: int = 0, chunk_rows: int = 2048,
    overwrite: bool = False, progress: bool = True,
    on_chunk: Callable[[str, int], None] | None = None,
) -> FeatureStore:
    """Store the features of `backbone` over `splits` (default: every split) of `benchmark` in `out`; returns
    the FeatureStore. `image_size`: default the backbone's one input size if it has one, else the size training feeds (training_image_size);
    `image_cache`: as data.image_cache ("auto", "off", a short side; None: $GLT_IMAGE_CACHE, else "auto")."""
    if batch_size < 1 or chunk_rows < 1:
        raise GLTError("--batch-size must be a positive integer")
    if weights and weights_file:
        raise GLTError("give either --weights (published weights by name) or --weights-file (a local file), not both")
    out = Path(out)
    bench = Benchmark(benchmark)
    m = bench.manifest
    names = list(splits) if splits else m.split_names
    for name in names:
        bench.split(name)  # an unknown or absent split is an error before any work
    dev = resolve_device(device)
    amp_dtype, amp_name = _amp(amp, dev)
    options = dict(options or {})
    try:
        with torch.random.fork_rng(devices=[]):  # a randomly initialised backbone is the same on every run
            torch.manual_seed(seed)
            model = create_backbone(backbone, weights, weights_file, **options).eval().to(dev)
    except (TypeError, RuntimeError) as e:  # an unknown option, a weights file of other shapes
        raise GLTError(f"cannot build backbone '{backbone}' (options {options}): {first_line(e)}") from None
    fixed = model.input_size
    size = int(image_size or fixed or training_image_size(m))
    if fixed and size != fixed:
        raise GLTError(f"backbone '{backbone}' takes {fixed} px images only (its position embeddings); "
                       f"--image-size {size} does not fit")
    mean, std = model.input_norm or (None, None)
    cache = select_cache(bench, image_cache, size)  # as training: $GLT_IMAGE_CACHE, else the best complete one
    transform = describe(eval_steps(m, size, mean, std), size, m.image_style)
    split_info = {n: {"rows": len(bench.split(n)), "ids_sha256": ids_digest(bench.split(n).id)} for n in names}
    risk = contamination(m, model.weights_name, weights_file)
    record = {
        "format": FORMAT, "version": VERSION, "glt_version": __version__,
        "benchmark": {"root": str(bench.root.resolve()), "name": m.name, "kind": getattr(m, "kind", None)},
        "backbone": backbone, "weights": weights, "weights_name": model.weights_name,
        "weights_file": str(Path(weights_file).resolve()) if weights_file else None,
        "weights_sha256": sha256_file(weights_file) if weights_file else None,
        "options": options, "seed": seed if not (weights or weights_file) else None, "transform": transform,
        "feature_dim": int(model.out_features), "dtype": "float16",
        "amp": amp_name, "contamination": risk, "splits": split_info,
    }
    # a folder holding files glt did not write is never used (nor, with --overwrite, emptied)
    check_layout_folder(out, STORE_LAYOUT, "feature store", overwrite)
    if (out / RECORD).is_file():
        if overwrite:
            _remove_store(out)
        else:
            old = read_record(out)
            _check_same(old, record, out)
            record["splits"] = {**old.get("splits", {}), **split_info}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RECORD, record)
    if risk["warning"]:
        print(f"glt: {risk['warning']}", file=sys.stderr)
    for name in names:
        if _copy_same_rows(out, name, record["splits"]):
            continue
        ds = eval_dataset(bench, name, size, mean, std, cache)  # decoded now (small benchmarks), not all at once
        _store_split(model, ds, split_files(out, name), len(ds), record["feature_dim"], batch_size, dev, amp_dtype,
                     chunk_rows, num_workers if not ds.batched else 0, progress, on_chunk, name)
    return FeatureStore(out)
