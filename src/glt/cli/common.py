"""Arguments shared by several subcommands."""

from __future__ import annotations


def add_config_args(p) -> None:
    p.add_argument("--config", dest="yaml_file", metavar="YAML", help="a YAML config file")
    p.add_argument("--preset", choices=["paper"], help="'paper': the original study's settings for ImageNet-GLT / MSCOCO-GLT benchmarks, "
                   "momentum 0 included (docs/reproduce.md, docs/fidelity.md)")
    p.add_argument("--backbone", help="the backbone (model.backbone): small_cnn, a torchvision name, timm:NAME, "
                   "open_clip:ARCH; `glt backbones` lists them (docs/foundation.md)")
    p.add_argument("--weights", metavar="NAME|FILE", help="published weights by name (model.weights: DEFAULT, "
                   "IMAGENET1K_V2, an open_clip pretrained tag...) or a local weights file (model.weights_file)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, anywhere after the command, e.g. epochs=30 optim.lr=0.05")


def train_config(args, sources: dict[str, str] | None = None):
    """The resolved config of `glt train` (and `glt config`) from its parsed arguments; `sources`, when given,
    receives where each value came from (glt.config.build_config)."""
    from glt.config import build_config

    extra = {}
    if args.track:
        extra["data"] = {"track": args.track}
    if args.seed is not None:
        extra["seed"] = args.seed
    return build_config(method=args.method, benchmark=args.benchmark, yaml_file=args.yaml_file,
                        overrides=args.overrides, preset=args.preset, extra=extra, sources=sources)


def add_out_args(p) -> None:
    p.add_argument("--out", required=True, help="output folder")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue an unfinished run in --out (never deletes anything)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace the run in --out: removes only the files glt wrote (a folder holding others is refused)")


def parse_names(text: str, what: str = "--methods") -> list[str]:
    from glt.errors import GLTError

    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise GLTError(f"{what} is empty")
    return names


def parse_seeds(text: str) -> list[int]:
    from glt.errors import GLTError

    try:
        return [int(s) for s in parse_names(text, "--seeds")]
    except ValueError:
        raise GLTError(f"--seeds must be comma-separated integers, not '{text}'") from None


def check_out_folder(path, what: str = "--out"):
    """An output folder that is not a file, not under a file, and writable (nothing is written)."""
    from glt.runtime.run_dir import check_output_folder

    return check_output_folder(path, what)


def check_out_file(path, what: str = "--out"):
    """An output file that is not a folder and whose folder is writable (nothing is written)."""
    from glt.runtime.run_dir import check_output_file

    return check_output_file(path, what)


def check_benchmark_out(path, overwrite: bool):
    """--out of `glt build` / `glt import`: a new benchmark folder. A non-empty folder is refused, and with
    --overwrite one that is not a benchmark (no manifest.json), naming what it holds: --overwrite replaces
    a benchmark, never a folder of the user's."""
    import os

    from glt.benchmark.directory import MANIFEST
    from glt.errors import GLTError

    p = check_out_folder(path)
    if not p.is_dir():
        return p
    entries = sorted(os.listdir(p))
    if not entries:
        return p
    if not overwrite:
        raise GLTError(f"output folder {p} already exists and is not empty (it holds {entries[0]}); use another "
                       "--out, or --overwrite to replace a benchmark folder")
    if not (p / MANIFEST).is_file():
        raise GLTError(f"output folder {p} holds {entries[0]}, which glt did not write (it is not a benchmark "
                       "folder); --overwrite replaces only a benchmark: move it away or use another --out")
    return p


_WEIGHT_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def is_weights_file(value: str) -> bool:
    """A `--weights` value naming a local file (it exists, or looks like a path) rather than published weights."""
    import os

    return os.path.exists(value) or os.sep in value or value.endswith(_WEIGHT_FILE_SUFFIXES)


def backbone_overrides(args) -> list[str]:
    """`--backbone` / `--weights` as the config overrides they stand for; a `--weights` value that is a file
    (or looks like a path) is model.weights_file, anything else a published weights name."""
    out = [f"model.backbone={args.backbone}"] if getattr(args, "backbone", None) else []
    w = getattr(args, "weights", None)
    if w:
        out += ([f"model.weights_file={w}", "model.weights=null"] if is_weights_file(w)
                else [f"model.weights={w}", "model.weights_file=null"])
    return out
