"""Start-up time of the `glt` command: the median wall time of `glt --help` (and, with --all, of
`glt methods` and `glt methods NAME`) over several fresh interpreter processes, and whether each one
imported torch.

    python benchmarks/startup_time.py [--repeat 5] [--all]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

PROBE = (
    "import sys\n"
    "from glt.cli.main import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit:\n"
    "    pass\n"
    "sys.stderr.write('torch imported: %s\\n' % ('torch' in sys.modules))\n"
)


def time_command(argv: list[str], repeat: int) -> tuple[float, list[float], bool]:
    times, torch_loaded = [], False
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                           env={**os.environ, "PYTHONWARNINGS": "ignore"})
        times.append(time.perf_counter() - t0)
        torch_loaded |= "torch imported: True" in r.stderr
    return statistics.median(times), times, torch_loaded


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--all", action="store_true", help="also time `glt methods` and `glt methods ifl+ce`")
    a = ap.parse_args()
    commands = [["--help"]] + ([["methods"], ["methods", "ifl+ce"]] if a.all else [])
    print(f"load average: {os.getloadavg()[0]:.1f}")
    for argv in commands:
        med, times, torch_loaded = time_command(argv, a.repeat)
        print(f"glt {' '.join(argv):<20} median {med:.2f} s over {a.repeat} runs "
              f"({', '.join(f'{t:.2f}' for t in times)}); torch imported: {torch_loaded}")


if __name__ == "__main__":
    main()
