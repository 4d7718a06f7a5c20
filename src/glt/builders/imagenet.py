"""Build ImageNet-GLT from the ImageNet train folder (ROOT/<wnid>/<images>) with the paper's settings
(docs/build.md): ResNet-50 features with the published ImageNet weights (resize 260, centre crop 256, the
2048-d pooled output), k-means per class into 6 clusters (seeded) merged by size into 3 pretext
attributes, classes ranked by size, Test-GBL (at most 20 per attribute), Test-CBL (60 per class, 7:2:1),
track glt (the published class-count profile shipped with glt, 7:2:1, then Test-GLT 60 and Val 30 per
class drawn i.i.d.) and track cbl (145 per class, 7:2:1, Val 21/6/3).

On the full ImageNet train set this gives the published sizes: Test-GBL 60,000, Test-CBL 60,000,
Test-GLT 60,000, Val 30,000 in both tracks, Train-CBL 114,000 (Train-GLT ~113,000; it depends on the
clusters). Without internet, pass the ResNet-50 weights as --weights-file FILE. Extraction is resumable
(per-class cache in OUT.cache); --features reuses features computed before.

Writes the benchmark directory, OUT/original/ (the two annotation files of the original release),
stats.json / stats.md and figures/.
"""

from __future__ import annotations

import argparse
import time

from glt.builders import folder

HELP = "ImageNet-GLT from the ImageNet train folder (ResNet-50 features, seeded k-means, the published sizes)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    folder.add_arguments(p, preset="imagenet")


def build_imagenet(root: str, out: str, **options) -> "folder.Path":
    """Python entry point: `build_imagenet(root, out, seed=0, ...)`, options as in folder.BuildOptions."""
    return folder.build_folder(folder.BuildOptions(root=root, out=out, preset="imagenet", **options))


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out = folder.build_folder(folder.options_from_args(args, preset="imagenet"))
    print(folder.summary(out, time.perf_counter() - t0))
    return 0
