"""IFL's per-sample training cost against its base method (matched budget), on ColorDigits-GLT.

Trains `blsoftmax` and `ifl` (IFL + Balanced Softmax) in the same process, alternating, and compares
the mean seconds per training epoch logged in metrics.jsonl (validation excluded). Both epochs see the
same number of samples under the matched budget.

    python benchmarks/ifl_overhead.py [--epochs 12] [--repeats 2] [--out /tmp/glt-ifl-overhead]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from glt.builders.digits import build_digits
from glt.config import build_config
from glt.engine.trainer import train


def epoch_seconds(run: Path) -> list[float]:
    return [json.loads(x)["train_seconds"] for x in (run / "metrics.jsonl").read_text().splitlines()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default="/tmp/glt-ifl-overhead")
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    bench = build_digits(out / "benchmark")
    times: dict[str, list[float]] = {"blsoftmax": [], "ifl": []}
    for r in range(args.repeats):
        for method in times:
            cfg = build_config(method=method, benchmark=str(bench), overrides=[f"epochs={args.epochs}", "progress=false"])
            run = out / f"{method}-{r}"
            train(cfg, run)
            times[method] += epoch_seconds(run)
    mean = {m: sum(t) / len(t) for m, t in times.items()}
    for m, t in mean.items():
        print(f"{m}: {t:.3f} s per training epoch ({len(times[m])} epochs)")
    print(f"IFL overhead per sample: {100 * (mean['ifl'] / mean['blsoftmax'] - 1):+.1f}%")


if __name__ == "__main__":
    main()
