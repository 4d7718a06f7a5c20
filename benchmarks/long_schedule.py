"""Methods at a longer schedule on ColorDigits-GLT's glt track (CLT = Test-CBL, GLT = Test-GBL), with CE
re-run at the same length: does a method's gap to CE at the 12-epoch default come from the schedule?

    python benchmarks/long_schedule.py --benchmark runs/zoo/benchmark --out runs/long --epochs 30

Runs `glt train` for every (method, seed) into OUT/METHOD/seedS (finished runs are kept, unfinished
ones resumed) and prints a Markdown table, mean ± std over seeds, percent."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from glt.config import build_config
from glt.engine.trainer import train

DEFAULT = "ce,ldam,mixup,randaug,bbn,ride,tade,lff"
COLUMNS = [("CLT", "glt/test_cbl"), ("GLT", "glt/test_gbl")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmark", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--methods", default=DEFAULT)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print("| method | CLT Acc | CLT Prc | GLT Acc | GLT Prc | seeds |\n|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        found: dict[str, list[float]] = {}
        for seed in seeds:
            cfg = build_config(method=method, benchmark=args.benchmark,
                               overrides=[f"epochs={args.epochs}", f"seed={seed}", "data.track=glt", "progress=false"])
            splits = train(cfg, Path(args.out) / method / f"seed{seed}", resume=True)
            for name, split in COLUMNS:
                for key in ("accuracy", "precision"):
                    found.setdefault(f"{name} {key}", []).append(100 * splits[split][key])
        cells = [f"{np.mean(v):.2f} ± {np.std(v, ddof=1):.2f}" if len(v) > 1 else f"{v[0]:.2f}" for v in found.values()]
        print(f"| `{method}` | " + " | ".join(cells) + f" | {len(seeds)} |", flush=True)


if __name__ == "__main__":
    main()
