"""Wall time of `glt demo` with and without the decoded-image arrays of ColorDigits-GLT (DIR/arrays,
written by `glt build digits`; without them every training decodes the split's PNGs one by one).

Builds the benchmark once, then runs the demo back to back on two copies of it: one with its arrays
folder removed, one with it present (alternating when --repeat > 1), each into a fresh folder.

    python benchmarks/demo_decode.py [--methods ce,ifl] [--repeat 1] [KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed_demo(bench: Path, out: Path, methods: str, overrides: list[str]) -> float:
    out.mkdir(parents=True)
    shutil.copytree(bench, out / "benchmark")  # the demo skips its build when OUT/benchmark exists
    t0 = time.perf_counter()
    chosen = [] if methods == "all" else ["--methods", methods]
    r = subprocess.run([sys.executable, "-m", "glt", "demo", "--out", str(out), *chosen, *overrides],
                       capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    t = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"glt demo failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="ce,ifl", help="the demo's --methods (default ce,ifl; 'all': the demo's own)")
    ap.add_argument("--repeat", type=int, default=1, help="demo runs per variant, alternating")
    ap.add_argument("overrides", nargs="*", help="config overrides passed to the demo")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="glt-demo-decode-") as tmp:
        tmp = Path(tmp)
        with_arrays = tmp / "bench"
        subprocess.run([sys.executable, "-m", "glt", "build", "digits", "--out", str(with_arrays)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        without = tmp / "bench-pngs"
        shutil.copytree(with_arrays, without)
        shutil.rmtree(without / "arrays")
        times: dict[str, list[float]] = {"without arrays (PNG decode)": [], "with arrays": []}
        for i in range(args.repeat):
            for (name, bench) in zip(times, (without, with_arrays)):
                t = timed_demo(bench, tmp / f"demo-{i}-{bench.name}", args.methods, args.overrides)
                times[name].append(t)
                print(f"run {i + 1} {name}: {t:.1f} s", flush=True)
        load = os.getloadavg()[0]
        print(f"glt demo --methods {args.methods} {' '.join(args.overrides)} (load {load:.1f}):")
        for name, ts in times.items():
            print(f"  {name:28s} median {statistics.median(ts):6.1f} s  ({', '.join(f'{t:.1f}' for t in ts)})")


if __name__ == "__main__":
    main()
