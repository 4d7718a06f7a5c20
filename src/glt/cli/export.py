"""`glt export`: write a benchmark directory as the two annotation files of the original release."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a benchmark in the original GLT annotation layout",
        description="Write <NAME>_inter_lt.json (track glt) and <NAME>_inter_bl.json (track cbl) in the "
        "layout of the original release, so tools written for the original benchmark read it: the "
        "ImageNet-GLT layout (keyed by image path) for benchmarks with one attribute index per sample, "
        "the MSCOCO-GLT layout (keyed by id, with a 'path' map) for multilabel ones.",
    )
    p.add_argument("--benchmark", required=True, metavar="DIR", help="benchmark directory")
    p.add_argument("--out", required=True, metavar="DIR2", help="folder for the two JSON files")
    p.add_argument("--name", default=None, help="file name prefix (default: the benchmark name)")
    p.add_argument("--absolute-paths", action="store_true",
                   help="write relative image paths as absolute paths under the benchmark folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.set_defaults(func=run)


def run(args) -> int:
    from glt.benchmark.original import export_original
    from glt.cli.common import check_out_folder

    check_out_folder(args.out)
    lt, bl = export_original(args.benchmark, args.out, args.name, overwrite=args.overwrite,
                             absolute_paths=args.absolute_paths)
    print(f"wrote {lt}\nwrote {bl}")
    return 0
