"""Pretext attributes (docs/build.md, "The recipe, step by step", steps 2-6): image features from a backbone, k-means per class, and the
K clusters merged by size into fewer attributes (6 -> 3 in pairs, attribute 0 the largest).

Features come from one of three places, all seen through a `FeatureStore` (class -> rows):
- a per-class feature cache filled by `extract_features` (resumable: a stopped build keeps every
  class it finished, and a rebuild with the same extractor settings reads them back);
- a cache folder of an earlier build (`--features DIR`);
- one precomputed `.npy` array (`--features FILE.npy`, memory-mapped), rows in image-list order,
  optionally with a `FILE.ids.txt` next to it naming the image of every row.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glt.io import file_mode
from glt.errors import GLTError
from glt.io import atomic_path, write_json

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CACHE_INFO = "extractor.json"


# ---- the images ---------------------------------------------------------------------------------
@dataclass
class ImageList:
    """Images in class-major order: class folders sorted by name, files sorted inside each class."""

    root: Path
    ids: list[str]  # path relative to `root`, '/'-separated
    class_names: list[str]  # folder names, sorted
    class_index: np.ndarray  # (N,) int64: index into class_names
    file_sizes: np.ndarray  # (N,) int64 bytes (part of the cache check)
    skipped: dict = field(default_factory=dict)  # what the scan left out: "links_skipped", "broken_links"

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_bounds(self) -> np.ndarray:
        """(C + 1,) row offsets: class c holds rows bounds[c]:bounds[c + 1]."""
        counts = np.bincount(self.class_index, minlength=self.num_classes)
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def class_digest(self, c: int) -> str:
        """A fingerprint of class c's files (ids and sizes): a cached class is reused only if it matches."""
        lo, hi = self.class_bounds()[c : c + 2]
        h = hashlib.sha256(self.class_names[c].encode())
        for i in range(lo, hi):
            h.update(f"\n{self.ids[i]}\t{int(self.file_sizes[i])}".encode())
        return h.hexdigest()


# ---- feature stores ---------------------------------------------------------------------------
class FeatureStore:
    """Features of every image, read class by class. `ok[i]` is False for an image that could not be read."""

    def __init__(self, get, bounds: np.ndarray, ok: np.ndarray, dim: int, source: str):
        self._get = get
        self.bounds = bounds
        self.ok = ok
        self.dim = dim
        self.source = source

    def class_features(self, c: int) -> np.ndarray:
        return self._get(c)


def _npy_ids_file(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".npy") + ".ids.txt")


def load_feature_array(path: str | os.PathLike, images: ImageList) -> FeatureStore:
    """A precomputed (N, D) `.npy` array, memory-mapped; its rows must be the images in list order."""
    path = Path(path)
    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise GLTError(f"cannot read feature file {path}: {e}") from None
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
        raise GLTError(f"feature file {path} must hold a 2-d float array, it holds {arr.dtype} {arr.shape}")
    if arr.shape[0] != len(images):
        raise GLTError(
            f"feature file {path} has {arr.shape[0]} rows but {images.root} has {len(images)} images "
            "(one row per image, classes in folder-name order, files sorted)"
        )
    ids_file = _npy_ids_file(path)
    if ids_file.is_file():
        ids = ids_file.read_text().splitlines()
        if len(ids) != len(images) or ids != images.ids:
            i = next((i for i, (a, b) in enumerate(zip(ids, images.ids)) if a != b), min(len(ids), len(images)))
            got = ids[i] if i < len(ids) else "<end of file>"
            want = images.ids[i] if i < len(images) else "<no more images>"
            raise GLTError(f"feature ids file {ids_file} line {i + 1} names '{got}', the image is '{want}'")
    return array_store(path, arr, images.class_bounds())


def array_store(path: Path, arr: np.ndarray, bounds: np.ndarray) -> FeatureStore:
    """Class blocks of a memory-mapped (N, D) array. A C-ordered .npy is read block by block with plain
    file reads: pages touched through a memory map count as resident memory, plain reads do not stay."""
    dim = arr.shape[1]
    offset = getattr(arr, "offset", None)

    def get(c: int) -> np.ndarray:
        lo, hi = int(bounds[c]), int(bounds[c + 1])
        if offset is None or not arr.flags.c_contiguous:
            return np.asarray(arr[lo:hi])
        block = np.fromfile(path, dtype=arr.dtype, count=(hi - lo) * dim, offset=offset + lo * dim * arr.dtype.itemsize)
        return block.reshape(hi - lo, dim)

    return FeatureStore(get, bounds, np.ones(int(bounds[-1]), bool), dim, str(path))


def _class_file(folder: Path, c: int) -> tuple[Path, Path]:
    return folder / f"class-{c:05d}.npy", folder / f"class-{c:05d}.json"


def _cached_class(folder: Path, images: ImageList, c: int) -> dict | None:
    """The record of class c in a cache folder if it is complete and matches the images, else None."""
    npy, meta = _class_file(folder, c)
    if not (meta.is_file() and npy.is_file()):
        return None
    try:
        rec = json.loads(meta.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if rec.get("digest") != images.class_digest(c):
        return None
    return rec


def load_feature_cache(folder: str | os.PathLike, images: ImageList) -> FeatureStore:
    """A per-class feature cache folder (written by `extract_features`) that covers every class."""
    folder = Path(folder)
    if not (folder / CACHE_INFO).is_file():
        raise GLTError(f"{folder} is not a feature cache folder (no {CACHE_INFO})")
    return _cache_store(folder, images)


def _cache_store(folder: Path, images: ImageList) -> FeatureStore:
    bounds = images.class_bounds()
    ok = np.ones(len(images), bool)
    dim = 0
    for c in range(images.num_classes):
        rec = _cached_class(folder, images, c)
        if rec is None:
            raise GLTError(
                f"feature cache {folder} has no features matching the {bounds[c + 1] - bounds[c]} images of class "
                f"'{images.class_names[c]}' (rows do not match the images; extract them again)"
            )
        ok[bounds[c] + np.asarray(rec["unreadable"], dtype=np.int64)] = False
        dim = rec["dim"]

    def get(c: int) -> np.ndarray:
        arr = np.load(_class_file(folder, c)[0], mmap_mode="r")
        if arr.shape[0] != bounds[c + 1] - bounds[c]:
            raise GLTError(f"feature cache file {_class_file(folder, c)[0]} has {arr.shape[0]} rows, class has "
                           f"{bounds[c + 1] - bounds[c]} images")
        return arr

    return FeatureStore(get, bounds, ok, dim, str(folder))


# ---- extraction ---------------------------------------------------------------------------------
@dataclass
class ExtractorConfig:
    """How features are computed (everything that changes them is part of the cache key)."""

    backbone: str = "resnet50"
    weights: str | None = "IMAGENET1K_V1"
    weights_file: str | None = None
    random_init: bool = False
    seed: int = 0  # initialises a --random-init backbone
    resize: int = 260  # shorter side
    crop: int = 256  # centre crop
    normalize: bool = True  # ImageNet mean/std
    batch_size: int = 64
    workers: int = 2
    device: str = "auto"

    def key(self) -> dict:
        if self.random_init:
            weights = f"random-init(seed={self.seed})"
        elif self.weights_file:
            weights = "file-sha256:" + _sha256_file(self.weights_file)
        else:
            weights = self.weights or "none"
        return {"backbone": self.backbone, "weights": weights, "resize": self.resize, "crop": self.crop,
                "normalize": self.normalize}

    def cache_name(self) -> str:
        k = self.key()
        digest = hashlib.sha256(json.dumps(k, sort_keys=True).encode()).hexdigest()[:10]
        slug = f"{self.backbone}-{'random' if self.random_init else 'file' if self.weights_file else self.weights}"
        return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in slug) + f"-{self.resize}-{self.crop}-{digest}"


def _sha256_file(path: str) -> str:
    if not os.path.isfile(path):
        raise GLTError(f"weights file not found: {path}")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def make_transform(resize: int, crop: int, normalize: bool = True):
    from torchvision import transforms

    steps = [transforms.Resize(resize), transforms.CenterCrop(crop), transforms.ToTensor()]
    if normalize:
        steps.append(transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return transforms.Compose(steps)


class _ImageDataset:
    """Images by row index; an unreadable image gives a zero tensor and ok=False instead of an exception."""

    def __init__(self, root: Path, ids: list[str], rows: np.ndarray, transform, crop: int):
        self.root, self.ids, self.rows, self.transform, self.crop = root, ids, rows, transform, crop

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, k: int):
        import torch
        from PIL import Image

        row = int(self.rows[k])
        try:
            with Image.open(self.root / self.ids[row]) as im:
                x = self.transform(im.convert("RGB"))
            return x, row, True
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return torch.zeros(3, self.crop, self.crop), row, False


def build_extractor(cfg: ExtractorConfig):
    """The backbone in eval mode; published weights that cannot be fetched end as a one-line error."""
    import torch

    from glt.models import create_backbone

    if cfg.random_init:
        torch.manual_seed(cfg.seed)  # a seeded random backbone gives the same features every time
        return create_backbone(cfg.backbone).eval()
    if cfg.weights_file:
        return create_backbone(cfg.backbone, weights_file=cfg.weights_file).eval()
    try:
        return create_backbone(cfg.backbone, weights=cfg.weights).eval()
    except GLTError:
        raise
    except (OSError, RuntimeError, ValueError, KeyError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GLTError(
            f"cannot get the published weights '{cfg.weights}' of backbone '{cfg.backbone}' ({first}); "
            "pass --weights-file FILE (a local state dict) or, for tests and demos only, --random-init"
        ) from None


def extract_features(
    images: ImageList, cache_dir: str | os.PathLike, cfg: ExtractorConfig, strict: bool = False, progress: bool = True
) -> FeatureStore:
    """Compute the features of every image not yet in the cache, class by class, and return the cache.

    Images are read in batches (one class at a time) by DataLoader worker processes; each class is
    written to the cache as soon as all its images are done. Unreadable images get a zero row and are
    listed in the class record (with `strict`, the first one is an error instead)."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    folder = Path(cache_dir) / cfg.cache_name()
    folder.mkdir(parents=True, exist_ok=True)
    info = folder / CACHE_INFO
    if not info.is_file():
        write_json(info, cfg.key())
        os.chmod(info, file_mode())
    bounds = images.class_bounds()
    todo = [c for c in range(images.num_classes) if _cached_class(folder, images, c) is None]
    if strict:
        cached = sorted(set(range(images.num_classes)) - set(todo))
        _raise_first_unreadable(folder, images, cached)
    if todo:
        rows = np.concatenate([np.arange(bounds[c], bounds[c + 1]) for c in todo])
        device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        model = build_extractor(cfg).to(device)
        dataset = _ImageDataset(images.root, images.ids, rows, make_transform(cfg.resize, cfg.crop, cfg.normalize), cfg.crop)
        # batches never span two classes: a class's features then come from the same batches whether or not
        # other classes were cached (batch composition changes the floating-point result of a conv)
        batches, start = [], 0
        for c in todo:
            n_c = int(bounds[c + 1] - bounds[c])
            batches += [range(start + lo, start + min(n_c, lo + cfg.batch_size)) for lo in range(0, n_c, cfg.batch_size)]
            start += n_c
        loader = DataLoader(dataset, batch_sampler=batches, num_workers=cfg.workers, pin_memory=device.startswith("cuda"))
        pending: dict[int, dict] = {}
        bar = tqdm(total=len(rows), desc="features", unit="img", disable=not progress, leave=False)
        with bar, torch.inference_mode():
            for x, row, ok in loader:
                feats = model(x.to(device, non_blocking=True)).float().cpu().numpy().astype(np.float16)
                row, ok = row.numpy(), ok.numpy()
                if strict and not ok.all():
                    bad = images.ids[int(row[~ok][0])]
                    raise GLTError(f"unreadable image {images.root / bad} (--strict; drop it or run without --strict)")
                for c in np.unique(images.class_index[row]):
                    sel = images.class_index[row] == c
                    n_c = int(bounds[c + 1] - bounds[c])
                    rec = pending.setdefault(int(c), {"x": np.zeros((n_c, feats.shape[1]), np.float16),
                                                      "bad": [], "done": 0})
                    local = row[sel] - bounds[c]
                    rec["x"][local] = feats[sel]
                    rec["bad"].extend(int(i) for i in local[~ok[sel]])
                    rec["done"] += int(sel.sum())
                    if rec["done"] == n_c:
                        _write_class(folder, images, int(c), pending.pop(int(c)))
                bar.update(len(row))
    return _cache_store(folder, images)


def _write_class(folder: Path, images: ImageList, c: int, rec: dict) -> None:
    npy, meta = _class_file(folder, c)
    with atomic_path(npy) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, rec["x"])
        os.chmod(tmp, file_mode())  # the umask's mode, not the temporary file's 0600
    # the record is written last: its presence marks the class as complete
    write_json(meta, {"class": images.class_names[c], "digest": images.class_digest(c),
                      "dim": int(rec["x"].shape[1]), "unreadable": sorted(rec["bad"])})
    os.chmod(meta, file_mode())


def _raise_first_unreadable(folder: Path, images: ImageList, classes: list[int]) -> None:
    bounds = images.class_bounds()
    for c in classes:
        rec = _cached_class(folder, images, c)
        if rec and rec["unreadable"]:
            bad = images.ids[int(bounds[c] + rec["unreadable"][0])]
            raise GLTError(f"unreadable image {images.root / bad} (--strict; drop it or run without --strict)")


# ---- clustering -----------------------------------------------------------------------------------
def class_seed(seed: int, c: int) -> int:
    """An independent seed per class, so a class's clusters do not depend on the others."""
    return int(np.random.SeedSequence([seed, c]).generate_state(1)[0] & 0x7FFFFFFF)


def kmeans_labels(x: np.ndarray, k: int, method: str = "sklearn", n_init: int = 3, seed: int = 0) -> np.ndarray:
    """Cluster the rows of `x` into `k` clusters (seeded); returns the cluster of every row."""
    if method == "sklearn":
        # float64 on purpose: with float32 input scikit-learn's k-means++ computes distances in upcast
        # chunks, ~3x slower than one float64 BLAS product (measured; docs/build.md)
        x = np.ascontiguousarray(x, dtype=np.float64)
        from sklearn.cluster import KMeans
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            # duplicate images give fewer distinct points than clusters: an empty cluster is fine here
            warnings.simplefilter("ignore", ConvergenceWarning)
            return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x).labels_.astype(np.int64)
    if method == "faiss":
        try:
            import faiss
        except ImportError:
            raise GLTError("--kmeans faiss needs faiss: pip install 'glt[faiss]' (or faiss-cpu)") from None
        x = np.ascontiguousarray(x, dtype=np.float32)
        km = faiss.Kmeans(x.shape[1], k, niter=25, nredo=n_init, seed=seed, min_points_per_centroid=1, verbose=False)
        km.train(x)
        return km.index.search(x, 1)[1][:, 0].astype(np.int64)
    raise GLTError(f"unknown k-means implementation '{method}' (sklearn or faiss)")


def merge_by_size(clusters: np.ndarray, k: int, groups: int) -> np.ndarray:
    """Sort the k clusters by size (largest first; ties by cluster id) and merge neighbours into
    `groups` attributes: with k=6, groups=3 the pairs (1+2, 3+4, 5+6), attribute 0 the largest."""
    sizes = np.bincount(clusters, minlength=k)
    by_size = np.argsort(-sizes, kind="stable")
    attr_of_cluster = np.empty(k, dtype=np.int64)
    attr_of_cluster[by_size] = np.arange(k) * groups // k
    return attr_of_cluster[clusters]


def pretext_attributes(
    store: FeatureStore,
    class_names: list[str],
    k: int = 6,
    groups: int = 3,
    method: str = "sklearn",
    n_init: int = 3,
    seed: int = 0,
    jobs: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """The pretext attribute of every image (-1 for unreadable ones): k-means per class, merged by size.

    Classes are clustered in `jobs` threads (default: one per CPU), each with single-threaded BLAS /
    OpenMP: a class is too small to gain from threads inside k-means, and on a busy machine threads
    that spin-wait for each other made it ~10x slower (measured; docs/build.md). Every class gets its
    own seed, so the result does not depend on `jobs` or on the order classes finish in."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits
    from tqdm.auto import tqdm

    if k % groups:
        raise GLTError(f"{k} clusters cannot be merged evenly into {groups} attributes")
    if method not in ("sklearn", "faiss"):
        raise GLTError(f"unknown k-means implementation '{method}' (sklearn or faiss)")
    if method == "faiss":
        try:
            import faiss  # noqa: F401
        except ImportError:
            raise GLTError("--kmeans faiss needs faiss: pip install 'glt[faiss]' (or faiss-cpu)") from None
    for c in range(len(class_names)):
        n_ok = int(store.ok[store.bounds[c] : store.bounds[c + 1]].sum())
        if n_ok < k:
            raise GLTError(f"class '{class_names[c]}' has {n_ok} readable images, clustering needs at least {k}")

    def one(c: int) -> np.ndarray:
        ok = store.ok[store.bounds[c] : store.bounds[c + 1]]
        x = np.asarray(store.class_features(c))[ok]
        return merge_by_size(kmeans_labels(x, k, method, n_init, class_seed(seed, c)), k, groups)

    out = np.full(len(store.ok), -1, dtype=np.int16)
    jobs = jobs or os.cpu_count() or 1
    # OpenMP thread counts are per thread: every worker sets its own limit (BLAS limits are global)
    with threadpool_limits(limits=1), _faiss_threads(1 if method == "faiss" else None), ThreadPoolExecutor(
        jobs, initializer=_single_threaded, initargs=(method == "faiss",)
    ) as pool:
        results = pool.map(one, range(len(class_names)))  # in class order, whatever order they finish in
        for c, attr in enumerate(tqdm(results, total=len(class_names), desc="k-means", unit="class",
                                      disable=not progress, leave=False)):
            lo, hi = store.bounds[c], store.bounds[c + 1]
            out[np.arange(lo, hi)[store.ok[lo:hi]]] = attr
    return out


def _single_threaded(faiss_too: bool) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # not restored: the worker thread ends with the pool
    if faiss_too:
        import faiss

        faiss.omp_set_num_threads(1)


@contextlib.contextmanager
def _faiss_threads(n: int | None):
    """Set faiss's OpenMP threads for the duration (its runtime may be one threadpoolctl does not see)."""
    if n is None:
        yield
        return
    try:
        import faiss
    except ImportError:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
