"""Features per second of the backbones `glt features` runs, on this machine (random init: no download).

    python benchmarks/feature_store.py [--batch-size 32] [--sizes 112,224] [--batches 3] [--device cpu]

ResNet-50 (torchvision, 2048-d) and a ViT-B/16 (timm vit_base_patch16_224 at the image size, 768-d), each
built by glt.models.create_backbone as the store builds it, in eval mode under torch.inference_mode; one
warm-up batch, then the median of `--batches` timed batches of random images. This is the backbone alone:
`glt features` adds decoding and the test transform (DataLoader workers, in parallel) and a float16 copy
into the memory map (negligible next to the forward pass)."""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from glt.models import create_backbone

MODELS = {
    "resnet50": lambda size: create_backbone("resnet50"),
    "vit_b16": lambda size: create_backbone("timm:vit_base_patch16_224", img_size=size),
}


def rate(model, batch: int, size: int, batches: int, device: torch.device) -> float:
    x = torch.randn(batch, 3, size, size, device=device)
    times = []
    with torch.inference_mode():
        for i in range(batches + 1):
            t = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:  # the first batch warms up
                times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--sizes", default="112,224")
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, batch {args.batch_size}")
    print("| backbone | image size | feature dim | features / s |")
    print("|---|---|---|---|")
    for name in args.models.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            model = MODELS[name](size).eval().to(device)
            r = rate(model, args.batch_size, size, args.batches, device)
            print(f"| {name} | {size} | {model.out_features} | {r:.1f} |", flush=True)


if __name__ == "__main__":
    main()
