"""Arguments shared by several subcommands."""

from __future__ import annotations


def add_config_args(p) -> None:
    p.add_argument("--config", dest="yaml_file", metavar="YAML", help="a YAML config file")
    p.add_argument("--preset", choices=["paper"], help="'paper': the original study's settings (SPEC 4-6) for ImageNet-GLT / MSCOCO-GLT benchmarks, "
                   "momentum 0 included")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. epochs=30 optim.lr=0.05")


def add_out_args(p) -> None:
    p.add_argument("--out", required=True, help="output folder")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue an unfinished run in --out")
    g.add_argument("--overwrite", action="store_true", help="replace whatever --out holds")


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
