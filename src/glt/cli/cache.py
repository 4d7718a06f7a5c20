"""`glt cache`: write resized JPEG copies of a benchmark's images, which training then reads instead."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "cache",
        help="write resized JPEG copies of a benchmark's images for faster training",
        description="Write a JPEG copy of every image of the benchmark (all splits, each image once), short side "
        "--short-side (never upscaled, aspect ratio kept), to DIR/cache/s<SHORT>_q<QUALITY>/, mirroring the "
        "images' relative paths; a marker written last says the cache is complete. Training and evaluation "
        "then read the copies: the complete cache with the smallest short side that is at least the size the "
        "test transform resizes to (128 for 112 px training). Re-running resumes an interrupted run. Set "
        "GLT_IMAGE_CACHE=off to train on the originals, or to a short side / folder name to pick a cache.",
    )
    p.add_argument("--benchmark", required=True, metavar="DIR", help="benchmark directory")
    p.add_argument("--short-side", type=int, default=128, metavar="N", help="short side of the copies in pixels (default 128)")
    p.add_argument("--quality", type=int, default=90, metavar="Q", help="JPEG quality 1-100 (default 90)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes (default: the CPUs available, at most 32)")
    p.add_argument("--overwrite", action="store_true", help="rewrite every copy, not only the missing ones")
    p.set_defaults(func=run)


def run(args) -> int:
    from glt.benchmark import Benchmark
    from glt.data.image_cache import build_cache, needed_short_side
    from glt.errors import GLTError

    if args.workers is not None and args.workers < 1:
        raise GLTError(f"--workers must be at least 1, not {args.workers}")
    bench = Benchmark(args.benchmark)
    r = build_cache(bench, args.short_side, args.quality, args.workers, args.overwrite)
    print(f"{r.folder}: {r.images} images ({r.written} written, {r.images - r.written} already there)")
    m = bench.manifest
    if r.in_memory:
        print(f"note: {m.name} is a '{m.image_style}' benchmark, whose images training decodes once into memory, "
              "so training reads the originals; the cache would only speed up that first decode, with lossy "
              f"copies (GLT_IMAGE_CACHE={r.folder.name} picks it all the same)")
    need = needed_short_side(m.image_style, m.image_size)
    if not r.in_memory and args.short_side < need:
        print(f"note: training at the manifest's {m.image_size} px reads a cache with short side >= {need}; "
              "this one is used only for smaller image sizes")
    return 0
