"""The original's count_dataset bug (utils/general_utils.py): class counts keyed by str(label) and sorted as text
(0, 1, 10, 100, 101, ...), so with more than 10 classes the class prior of Balanced Softmax, LDAM, RIDE and
TADE is another class's. glt counts by label; `data.prior_order=original_text_sort` reproduces the bug
(docs/fidelity.md, section bugs).

    python benchmarks/count_dataset_bug.py prior [--counts FILE]      # (a) how far the misaligned prior is
    python benchmarks/count_dataset_bug.py train [--seeds 0,1,2] [--epochs 12] [--out DIR]   # (b) training

(a) reads a class-count profile (default: ImageNet-GLT's, glt/resources/imagenet_glt_class_counts.json; label 0
the largest class, as the original's generation ranks its labels) and compares the prior p (by label) with
the original's q (entry c = the count of the c-th class id in text order): total variation, the largest ratio,
how many classes get a prior off by more than 2x, the error of Balanced Softmax's logit offset log q - log p,
and LDAM's margin ratio.

(b) trains blsoftmax with data.prior_order=label and =original_text_sort (and ce for reference) on a
generated 20-class long-tailed benchmark (class = the grid cell of a noisy square on a 4 x 5 grid,
attribute = its colour; small enough for a CPU: 12 epochs of a small CNN), over several seeds, and prints
CLT / GLT accuracy and precision, the CLT accuracy of the classes whose prior the bug inflates (text order
0, 1, 10..19, 2..9: entries 12-19, tail classes, get the counts of classes 2-9) and of the others, and the
share of predictions in the inflated classes. Balanced Softmax trains on logits + log prior, so a class
given too large a prior is predicted too rarely at test time. Results: OUT/count_dataset_bug.json.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import time
from pathlib import Path

import numpy as np


def text_order(num_classes: int) -> list[int]:
    return sorted(range(num_classes), key=str)


def orig_count_dataset(labels) -> np.ndarray:
    """utils/general_utils.py count_dataset, verbatim in behaviour."""
    freq: dict[str, int] = {}
    for label in labels:
        freq[str(label)] = freq.get(str(label), 0) + 1
    return np.array(list(dict(sorted(freq.items())).values()))


def prior_report(counts: np.ndarray) -> dict:
    counts = np.asarray(counts, dtype=np.float64)
    c = len(counts)
    labels = np.repeat(np.arange(c), counts.astype(int))
    q_counts = orig_count_dataset(labels.tolist()).astype(np.float64)
    p, q = counts / counts.sum(), q_counts / q_counts.sum()
    ratio = q / p
    off = np.abs(np.log(ratio))
    margin = lambda n: n**-0.25 / (n**-0.25).max() * 0.5  # LDAM margins, max 0.5  # noqa: E731
    groups = {"many (labels 0-399)": slice(0, 400), "medium (400-849)": slice(400, 850), "few (850-999)": slice(850, c)}
    per_group = {}
    if c == 1000:  # ImageNet-GLT's frequency groups (the original's get_frequency_label)
        for name, sl in groups.items():
            per_group[name] = {"mean log2(q/p)": float(np.mean(np.log2(ratio[sl]))),
                               "classes off by > 2x": int((off[sl] > np.log(2)).sum()),
                               "share of the true prior mass": float(p[sl].sum()),
                               "share of the misaligned prior mass": float(q[sl].sum())}
    return {
        "classes": c,
        "images": int(counts.sum()),
        "classes with another class's count": int((np.array(text_order(c)) != np.arange(c)).sum()),
        "classes whose count differs": int((q_counts != counts).sum()),
        "total variation 0.5*sum|q-p|": float(0.5 * np.abs(q - p).sum()),
        "L1 sum|q-p|": float(np.abs(q - p).sum()),
        "largest ratio q/p": float(ratio.max()),
        "smallest ratio q/p": float(ratio.min()),
        "classes off by > 2x": int((off > np.log(2)).sum()),
        "classes off by > 10x": int((off > np.log(10)).sum()),
        "Balanced Softmax offset error |log q - log p|, mean (nats)": float(off.mean()),
        "Balanced Softmax offset error, max (nats)": float(off.max()),
        "LDAM margin ratio (bug / right), max": float((margin(q_counts) / margin(counts)).max()),
        "LDAM margin ratio, min": float((margin(q_counts) / margin(counts)).min()),
        "per frequency group": per_group,
    }


# ---- (b): a generated 20-class benchmark ------------------------------------------------------------------------
GRID = (4, 5)  # rows x columns of square positions: one class each


def make_grid_benchmark(root: Path, num_classes: int = 20, seed: int = 0, size: int = 20, head: int = 240,
                        imbalance: float = 20.0) -> Path:
    """Like tests/conftest.py's tiny benchmark with more classes: the class is the grid cell of a bright square
    (jittered, on noise), the attribute its colour (long-tailed inside each class in training)."""
    from PIL import Image

    from glt.benchmark import Manifest, SplitTable, write_benchmark

    rng = np.random.default_rng(seed)
    colours = np.array([[255, 40, 40], [40, 255, 40], [40, 40, 255]], dtype=np.uint8)
    (root / "images").mkdir(parents=True, exist_ok=True)
    cell = size // GRID[1]
    counter = [0]

    def sample(label: int, attr: int) -> tuple[str, str]:
        img = rng.integers(0, 140, (size, size, 3), dtype=np.uint8)
        r, c = divmod(label, GRID[1])
        y0 = r * cell + rng.integers(-1, 2)
        x0 = c * cell + rng.integers(-1, 2)
        y0, x0 = int(np.clip(y0, 0, size - cell)), int(np.clip(x0, 0, size - cell))
        patch = (colours[attr] * rng.uniform(0.45, 0.8)).astype(np.uint8)
        img[y0 : y0 + cell - 1, x0 : x0 + cell - 1] = np.maximum(img[y0 : y0 + cell - 1, x0 : x0 + cell - 1], patch)
        i = counter[0]
        counter[0] += 1
        rel = f"images/{i:05d}.png"
        Image.fromarray(img).save(root / rel)
        return f"s{i:05d}", rel

    def table(counts, attr_ratio) -> SplitTable:
        rows = []
        for c, n in enumerate(counts):
            for a in rng.choice(3, size=n, p=attr_ratio):
                freq = 0 if c < num_classes // 3 else (1 if c < 2 * num_classes // 3 else 2)
                rows.append((*sample(c, int(a)), c, freq, int(a)))
        ids, paths, labels, freq, attr = zip(*rows)
        return SplitTable(np.array(ids), np.array(paths), labels, freq, attr)

    lt = [max(6, int(round(head * imbalance ** (-c / (num_classes - 1))))) for c in range(num_classes)]
    skew, flat = [0.8, 0.15, 0.05], [1 / 3] * 3
    splits = {
        "glt/train": table(lt, skew),
        "glt/val": table([10] * num_classes, skew),
        "glt/test_glt": table([10] * num_classes, skew),
        "glt/test_cbl": table([30] * num_classes, skew),
        "glt/test_gbl": table([30] * num_classes, flat),
        "cbl/train": table([20] * num_classes, skew),
        "cbl/val": table([10] * num_classes, skew),
    }
    splits["cbl/test_cbl"] = splits["glt/test_cbl"]
    splits["cbl/test_gbl"] = splits["glt/test_gbl"]
    manifest = Manifest(name="grid20", classes=[f"cell{c}" for c in range(num_classes)], num_attributes=3,
                        image_style="small", image_size=size,
                        info={"generator": "benchmarks/count_dataset_bug.py", "seed": seed, "train_counts": lt})
    write_benchmark(root, manifest, splits)
    return root


def _train(bench: Path, out: Path, seed: int, epochs: int, order: str, method: str = "blsoftmax") -> dict:
    from glt.config import build_config
    from glt.engine import trainer

    overrides = [f"epochs={epochs}", f"seed={seed}", "progress=false", "data.num_workers=0",
                 "model.backbone=small_cnn", f"data.prior_order={order}"]
    cfg = build_config(method=method, benchmark=str(bench), overrides=overrides)
    t0 = time.perf_counter()
    res = trainer.train(cfg, out, overwrite=True)
    seconds = time.perf_counter() - t0
    preds = np.loadtxt(out / "predictions" / "glt__test_cbl.csv", delimiter=",", skiprows=1, dtype=str)
    return {"results": res, "seconds": seconds, "predictions": preds[:, 1].astype(int).tolist()}


# CE for reference (it reads no class counts), then Balanced Softmax with the right and with the original's prior
VARIANTS = [("ce", "label"), ("blsoftmax", "label"), ("blsoftmax", "original_text_sort")]


def train_report(out: Path, seeds: list[int], epochs: int) -> dict:
    from glt.benchmark import Benchmark

    bench = out / "benchmark"
    if not (bench / "manifest.json").is_file():
        make_grid_benchmark(bench)
    b = Benchmark(bench)
    counts = b.split("glt/train").class_counts(b.num_classes)
    truth = b.split("glt/test_cbl").label
    inflated = np.flatnonzero(orig_count_dataset(np.repeat(np.arange(len(counts)), counts).tolist()) > counts)
    rows = {}
    for method, order in VARIANTS:
        for seed in seeds:
            r = _train(bench, out / f"{method}-{order}-seed{seed}", seed, epochs, order, method)
            pred = np.asarray(r["predictions"])
            m = {s.split("/")[-1]: r["results"][s] for s in r["results"]}
            rows[f"{method}:{order}/{seed}"] = {
                "CLT acc": m["test_cbl"]["accuracy"], "CLT prc": m["test_cbl"]["precision"],
                "GLT acc": m["test_gbl"]["accuracy"], "GLT prc": m["test_gbl"]["precision"],
                "CLT acc, classes the bug inflates": float((pred == truth)[np.isin(truth, inflated)].mean()),
                "CLT acc, other classes": float((pred == truth)[~np.isin(truth, inflated)].mean()),
                "share of CLT predictions in inflated classes": float(np.isin(pred, inflated).mean()),
                "seconds": r["seconds"],
            }
            print(method, order, seed, json.dumps(rows[f"{method}:{order}/{seed}"]), flush=True)
    return {"train_counts": counts.tolist(), "inflated_classes": inflated.tolist(), "runs": rows}


def summary(rows: dict) -> str:
    keys = [k for k in next(iter(rows.values())) if k != "seconds"]
    lines = ["| method, data.prior_order | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for method, order in VARIANTS:
        vals = [v for k, v in rows.items() if k.startswith(f"{method}:{order}/")]
        cells = [f"{100 * np.mean([v[k] for v in vals]):.2f} ± {100 * np.std([v[k] for v in vals]):.2f}" for k in keys]
        lines.append(f"| {method}, {order} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("prior")
    a.add_argument("--counts", help="JSON file with a 'counts' list (label order); default ImageNet-GLT's profile")
    t = sub.add_parser("train")
    t.add_argument("--seeds", default="0,1,2")
    t.add_argument("--epochs", type=int, default=12)
    t.add_argument("--out", default="/tmp/glt-count-dataset-bug")
    args = ap.parse_args()
    if args.cmd == "prior":
        if args.counts:
            text = Path(args.counts).read_text()
        else:
            text = importlib.resources.files("glt.resources").joinpath("imagenet_glt_class_counts.json").read_text()
        print(json.dumps(prior_report(np.asarray(json.loads(text)["counts"])), indent=2))
    else:
        import torch

        torch.set_num_threads(1)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        rep = train_report(out, [int(s) for s in args.seeds.split(",")], args.epochs)
        (out / "count_dataset_bug.json").write_text(json.dumps(rep, indent=2))
        print(summary(rep["runs"]))
        print(f"total training seconds: {sum(r['seconds'] for r in rep['runs'].values()):.0f}")


if __name__ == "__main__":
    main()
