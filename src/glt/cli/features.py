"""`glt features`: run a backbone once over a benchmark's splits and store the features (glt.features)."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "features", help="store a frozen backbone's features for every split of a benchmark",
        description="Runs BACKBONE (as `glt backbones` lists it) over every split of the benchmark with its test-time "
        "transform and stores float16 features, memory-mapped, with the split ids and a record (store.json). "
        "A stopped run continues where it stopped when started again with the same options.",
    )
    p.add_argument("--benchmark", required=True, help="benchmark directory")
    p.add_argument("--backbone", required=True, help="e.g. resnet50, timm:vit_base_patch16_224, open_clip:ViT-B-32")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--weights", metavar="NAME|FILE", help="published weights: a torchvision weights name (DEFAULT, "
                   "IMAGENET1K_V2), a timm or open_clip pretrained tag (laion2b_s34b_b79k), downloaded by that "
                   "library; or a local file (as --weights-file)")
    g.add_argument("--weights-file", help="a local state dict of the backbone (offline)")
    p.add_argument("--out", required=True, help="the store folder")
    p.add_argument("--splits", help="comma-separated splits (default: all), e.g. glt/train,glt/test_gbl")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, mps")
    p.add_argument("--amp", default="fp16", choices=["fp16", "bf16", "none"], help="autocast precision on CUDA")
    p.add_argument("--image-size", type=int, help="default: the backbone's own input size if it has one, else the "
                   "size training feeds on this benchmark (its style's data.image_size, else the manifest's)")
    p.add_argument("--workers", type=int, default=4, help="DataLoader worker processes (images read from files)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a keyword argument of the backbone factory (model.options), e.g. drop_path_rate=0")
    p.add_argument("--seed", type=int, default=0, help="the initialisation of a backbone without weights")
    p.add_argument("--overwrite", action="store_true", help="replace a store made with other settings")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _options(items: list[str]) -> dict:
    import yaml

    from glt.errors import GLTError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise GLTError(f"--option must be KEY=VALUE, not '{item}'")
        out[key] = yaml.safe_load(value)
    return out


def run(args) -> int:
    from glt.cli.common import check_out_folder, is_weights_file, parse_names
    from glt.features.extract import extract_features  # imports torch and the model zoo

    if args.weights and is_weights_file(args.weights):  # `--weights FILE`, as glt train takes it
        args.weights, args.weights_file = None, args.weights
    out = check_out_folder(args.out)
    splits = parse_names(args.splits, "--splits") if args.splits else None
    store = extract_features(
        args.benchmark, args.backbone, out, weights=args.weights, weights_file=args.weights_file, splits=splits,
        batch_size=args.batch_size, device=args.device, image_size=args.image_size, num_workers=args.workers,
        amp=args.amp, options=_options(args.option), seed=args.seed, overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    r = store.record
    print(f"{len(store.splits)} splits, {r['feature_dim']}-d features of {r['backbone']} "
          f"({r['weights_name'] or r['weights_file'] or 'random init'}) in {store.root}")
    return 0
