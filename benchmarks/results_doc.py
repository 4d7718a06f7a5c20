"""Write docs/results.md: our ColorDigits-GLT numbers for every method next to the published
ImageNet-GLT numbers (Tang et al. 2022, Table 1; ALT from later copies of it), so the *pattern*
can be compared (which methods gain on CLT but not on GLT / ALT; what IFL adds).

    python benchmarks/results_doc.py runs/zoo/report --wall-seconds N > docs/results.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# method -> protocol -> (accuracy, precision), percent, ImageNet-GLT, as published
PUBLISHED = {
    "ce": {"CLT": (42.52, 47.92), "GLT": (34.75, 40.65), "ALT": (41.73, 41.74)},
    "crt": {"CLT": (45.92, 45.34), "GLT": (37.57, 37.51), "ALT": (41.59, 41.43)},
    "lws": {"CLT": (46.43, 45.90), "GLT": (37.94, 38.01), "ALT": (41.70, 41.71)},
    "tde": {"CLT": (45.70, 44.48), "GLT": (37.56, 37.00), "ALT": (41.40, 42.36)},
    "blsoftmax": {"CLT": (45.79, 46.27), "GLT": (37.09, 38.08), "ALT": (41.32, 41.37)},
    "logit_adj": {"CLT": (46.53, 45.56), "GLT": (37.80, 37.56), "ALT": (41.73, 41.74)},
    "bbn": {"CLT": (46.46, 49.86), "GLT": (37.91, 41.77), "ALT": (43.26, 43.86)},
    "ldam": {"CLT": (46.74, 46.86), "GLT": (38.54, 39.08), "ALT": (42.66, 41.80)},
    "mixup": {"CLT": (38.81, 45.41), "GLT": (31.55, 37.44), "ALT": (42.11, 42.42)},
    "randaug": {"CLT": (46.40, 52.13), "GLT": (38.24, 44.74), "ALT": (46.29, 46.32)},
    "tade": {"CLT": (50.47, 51.85), "GLT": (41.75, 44.15)},
    "ride": {"CLT": (52.08, 51.65), "GLT": (43.00, 43.32)},
    "ifl+ce": {"CLT": (45.97, 52.06), "GLT": (37.96, 44.47), "ALT": (45.89, 46.42)},
    "ifl+crt": {"CLT": (47.94, 49.63), "GLT": (39.60, 41.65)},
    "ifl+lws": {"CLT": (47.89, 50.29), "GLT": (39.64, 42.45)},
    "ifl": {"CLT": (48.34, 50.39), "GLT": (40.08, 43.48)},  # published as BLSoftmax+IFL
    "ifl+logit_adj": {"CLT": (49.26, 50.02), "GLT": (40.52, 42.28)},
    "ifl+mixup": {"CLT": (51.43, 57.44), "GLT": (43.00, 49.25)},
    "ifl+randaug": {"CLT": (53.40, 58.11), "GLT": (44.90, 50.47)},
    "ifl+tade": {"CLT": (51.78, 52.41), "GLT": (43.47, 45.17)},
    "ifl+ride": {"CLT": (53.93, 54.76), "GLT": (45.64, 47.14)},
}
PROTOCOLS = ("CLT", "GLT", "ALT")


def cell(entry, key):
    if entry is None or entry.get(key) is None:
        return "-"
    m, s = entry[key]["mean"], entry[key]["std"]
    return f"{100 * m:.2f} ± {100 * s:.2f}" if entry.get("seeds", 1) > 1 else f"{100 * m:.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report", type=Path, help="a `glt report` folder (its results.json)")
    ap.add_argument("--wall-seconds", type=int, default=None)
    args = ap.parse_args()
    ours = json.loads((args.report / "results.json").read_text())
    order = [m for m in ["ce", "focal", "blsoftmax", "logit_adj", "logit_adj_loss", "ldam", "mixup", "randaug",
                         "crt", "lws", "tau_norm", "tde", "bbn", "ride", "tade", "lff"] if m in ours]
    order += sorted(m for m in ours if m.startswith("ifl")) + sorted(m for m in ours if m not in order and not m.startswith("ifl"))
    seeds = max(p["seeds"] for m in ours.values() for p in m.values())
    print("# Every method on ColorDigits-GLT, next to the published ImageNet-GLT numbers\n")
    print(f"Ours: ColorDigits-GLT (default build, seed 0), default 12-epoch setting of the embedded benchmark, "
          f"{seeds} seeds (0, 1, 2), percent, mean ± std, Accuracy | Precision. Published: ImageNet-GLT, "
          "ResNeXt-50, 100 epochs (Tang et al. 2022, Table 1; `ifl` there is BLSoftmax+IFL, `ifl+ce` is Baseline+IFL). "
          "The two benchmarks differ in size, images and difficulty: compare the *pattern*, not the levels.\n")
    cmd = "bash benchmarks/zoo_sweep.sh runs/zoo"
    wall = f" ({args.wall_seconds / 3600:.1f} h of wall time on the shared 2-core machine)" if args.wall_seconds else ""
    print(f"Produced by `{cmd}` (a sweep of `glt run` + `glt report`){wall}, then "
          f"`python benchmarks/results_doc.py runs/zoo/report`.\n")
    header = ["method"] + [f"{p} {k}" for p in PROTOCOLS for k in ("Acc", "Prc")] + [f"pub. {p}" for p in PROTOCOLS]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for m in order:
        row = [f"`{m}`"]
        for p in PROTOCOLS:
            e = ours[m].get(p)
            row += [cell(e, "accuracy"), cell(e, "precision")]
        pub = PUBLISHED.get(m, {})
        row += [f"{pub[p][0]:.2f} \\| {pub[p][1]:.2f}" if p in pub else "-" for p in PROTOCOLS]
        print("| " + " | ".join(row) + " |")
    print()
    print("Gains over the CE baseline, ours (ColorDigits-GLT, accuracy points) and published (ImageNet-GLT):\n")
    print("| method | CLT ours | GLT ours | ALT ours | CLT pub. | GLT pub. | ALT pub. |")
    print("|---|---|---|---|---|---|---|")
    base, pub_base = ours["ce"], PUBLISHED["ce"]
    for m in order:
        if m == "ce":
            continue
        row = [f"`{m}`"]
        for p in PROTOCOLS:
            e = ours[m].get(p)
            row.append(f"{100 * (e['accuracy']['mean'] - base[p]['accuracy']['mean']):+.2f}" if e else "-")
        pub = PUBLISHED.get(m, {})
        row += [f"{pub[p][0] - pub_base[p][0]:+.2f}" if p in pub else "-" for p in PROTOCOLS]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
