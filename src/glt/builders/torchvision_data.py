"""Build a GLT benchmark from a classification dataset torchvision knows (CIFAR-100, STL-10, Food-101...).

The dataset is read with torchvision from --root (its usual layout; --download fetches it where the
machine has internet). Every image is written as a PNG into the benchmark directory
(OUT/images/<class>/<dataset index>.png), then the `glt build folder` recipe runs on that tree: features,
6 clusters per class merged into 3 pretext attributes, Test-GBL / Test-CBL / both tracks, sizes scaled
to the data unless given. Split paths are relative to the benchmark directory, so it can be moved.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from glt.builders import folder
from glt.errors import GLTError
from glt.benchmark.output import build_output
from glt.registry import Registry

HELP = "a GLT benchmark from a torchvision dataset (cifar100, cifar10, stl10, food101...): images written, then the folder recipe"

# name -> (torchvision.datasets class, keyword selecting the training split, its value)
DATASETS: Registry[tuple[str, str | None, object]] = Registry("torchvision dataset")
for _name, _spec in {
    "cifar10": ("CIFAR10", "train", True),
    "cifar100": ("CIFAR100", "train", True),
    "mnist": ("MNIST", "train", True),
    "fashion_mnist": ("FashionMNIST", "train", True),
    "kmnist": ("KMNIST", "train", True),
    "svhn": ("SVHN", "split", "train"),
    "stl10": ("STL10", "split", "train"),
    "food101": ("Food101", "split", "train"),
    "flowers102": ("Flowers102", "split", "train"),
    "dtd": ("DTD", "split", "train"),
    "gtsrb": ("GTSRB", "split", "train"),
    "fgvc_aircraft": ("FGVCAircraft", "split", "trainval"),
    "oxford_pets": ("OxfordIIITPet", "split", "trainval"),
    "caltech101": ("Caltech101", None, None),
}.items():
    DATASETS.add(_name, _spec)


def open_dataset(name: str, root: str, download: bool = False, split: str | None = None):
    """The torchvision dataset `name` (its training split unless `split`), as a torchvision object."""
    import torchvision

    cls_name, key, value = DATASETS.get(name)
    kwargs: dict = {}
    if key == "train":
        kwargs["train"] = value if split is None else split == "train"
        if split not in (None, "train", "test"):
            raise GLTError(f"dataset '{name}' has the splits train and test, not '{split}'")
    elif key == "split":
        kwargs["split"] = value if split is None else split
    elif split is not None:
        raise GLTError(f"dataset '{name}' has no splits to choose from")
    try:
        return getattr(torchvision.datasets, cls_name)(root, download=download, **kwargs)
    except (RuntimeError, OSError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        hint = "" if download else "; pass --download where the machine has internet"
        raise GLTError(f"cannot open torchvision dataset '{name}' in {root}: {first}{hint}") from None


def class_folder_names(ds) -> dict[int, str]:
    """A folder name per label: the dataset's class names made file-safe (and unique), else class_<label>."""
    names = getattr(ds, "classes", None) or []
    out: dict[int, str] = {}
    used: set[str] = set()
    for lab, raw in enumerate(names):
        safe = "".join(ch if ch.isalnum() or ch in " -_.,()" else "_" for ch in str(raw)).strip(" .") or f"class_{lab:04d}"
        if safe in used:
            safe = f"{safe}_{lab}"
        used.add(safe)
        out[lab] = safe
    return out


def write_images(ds, dest: Path, progress: bool = True, chunk: int = 512) -> int:
    """Write every image of `ds` as dest/<class>/<index>.png (streamed: a chunk in memory at a time)."""
    from tqdm.auto import tqdm

    n = len(ds)
    if n == 0:
        raise GLTError("the torchvision dataset is empty")
    width = len(str(n - 1))
    folders = class_folder_names(ds)

    def save(item) -> None:
        i, img, lab = item
        name = folders.get(lab, f"class_{lab:04d}")
        (dest / name).mkdir(parents=True, exist_ok=True)
        img.save(dest / name / f"{i:0{width}d}.png", format="PNG")

    # PNG encoding releases the GIL: threads overlap it with reading the next chunk
    with ThreadPoolExecutor(max_workers=4) as pool, tqdm(
        total=n, desc="write images", unit="img", disable=not progress, leave=False
    ) as bar:
        for lo in range(0, n, chunk):
            batch = []
            for i in range(lo, min(n, lo + chunk)):
                img, target = ds[i]
                batch.append((i, img, int(target)))
            list(pool.map(save, batch))
            bar.update(len(batch))
    return n


def build_torchvision(
    dataset: str, root: str, opts: folder.BuildOptions, download: bool = False, split: str | None = None
) -> Path:
    """Build the benchmark of torchvision dataset `dataset` (files in `root`) into `opts.out`."""
    folder._check_options(opts)
    ds = open_dataset(dataset, root, download, split)
    with build_output(opts.out, opts.overwrite, folder.log) as tmp:
        write_images(ds, tmp / "images", progress=opts.progress)
        images = folder.scan_folder(tmp / "images")
        if opts.name is None:
            opts.name = f"{dataset}-glt"
        info = {"builder": "torchvision", "dataset": f"torchvision.datasets.{DATASETS.get(dataset)[0]}", "dataset_root": str(Path(root).resolve()),
                "dataset_split": split or DATASETS.get(dataset)[2]}
        folder.build_into(tmp, opts, images, path_prefix="images/", info=info)
    return Path(opts.out)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help=f"one of: {', '.join(DATASETS.names())}")
    p.add_argument("--download", action="store_true", help="let torchvision download the dataset into --root")
    p.add_argument("--split", help="dataset split to use (default: its training split)")
    folder.add_arguments(p)
    for action in p._actions:  # --root here is torchvision's data folder, not a class-per-folder tree
        if action.dest == "root":
            action.help = "the dataset folder torchvision reads (and --download writes)"


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    opts = folder.options_from_args(args)
    out = build_torchvision(args.dataset, args.root, opts, download=args.download, split=args.split)
    print(folder.summary(out, time.perf_counter() - t0))
    return 0
