"""The table of docs/fidelity.md's measured effects: each variant sweep of benchmarks/fidelity_effects.sh next to
the same methods at glt's defaults (the zoo sweep), accuracy mean ± sample std over seeds, percent.

    python benchmarks/fidelity_effects.py ZOO OUT [--wall-seconds N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

PROTOCOLS = ("CLT", "GLT", "ALT")
# variant folder -> (what it switches to, the default it is compared with)
VARIANTS = {
    "head_bias": ("`model.head_bias=true`", "no bias (the original's heads)"),
    "schedule_step": ("`optim.schedule_granularity=step`", "rate per epoch (the original)"),
    "stage2_length": ("`method_args.samples_per_epoch=3000` (about N)", "min(max n_c * C, 4N) (the original)"),
    "stage2_bn_eval": ("`method_args.backbone_mode=eval`", "backbone BN in train mode (the original)"),
    "focal_full_grad": ("`method_args.detach_factor=false`", "detached factor (the original)"),
    "bbn_alpha_bbn": ("`method_args.alpha_rule=bbn`", "1 - ((e-1)/E)^2 (the original)"),
    "bbn_split_batch": ("`method_args.branch_batch=split`", "a full batch per branch (the original)"),
    "experts_full_width": ("`method_args.expert_width=1.0`", "3/4-width experts (the original)"),
    "lff_paper": ("`ema=0.7 class_max=true biased_init=copy`", "batch losses, independent twin (the original)"),
    "irm_v1": ("`penalty=irmv1 rebuild_every_epoch=false`", "L1 batch penalty, rebuilt every epoch (the original)"),
    "randaug_torchvision": ("`data.augment=randaugment_torchvision`", "the original's RandAugment"),
    "ifl_scores_mean": ("`epoch_scores=mean undrawn=carry`", "last score, undrawn weight 0 (the original)"),
    "ifl_budget_original": ("`wrapper_args.budget=original` (2N)", "matched budget N (glt's default)"),
    "ifl_ldam_trained_scores": ("`wrapper_args.score_logits=trained`", "softmax of the cosines (the original)"),
}


def accuracies(sweep: Path, method: str) -> dict[str, list[float]]:
    out = {p: [] for p in PROTOCOLS}
    for f in sorted((sweep / "runs" / method).glob("seed*/protocols.json")):
        r = json.loads(f.read_text())
        for p in PROTOCOLS:
            if r.get(p):
                out[p].append(100 * r[p]["accuracy"])
    return out


def cell(values: list[float]) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}" if len(values) > 1 else "-"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("zoo", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--wall-seconds", type=int, default=None)
    args = ap.parse_args()
    print("| variant | method | default: CLT / GLT / ALT | variant: CLT / GLT / ALT | GLT change |")
    print("|---|---|---|---|---|")
    for name, (what, default) in VARIANTS.items():
        sweep = args.out / name
        if not sweep.is_dir():
            continue
        for method_dir in sorted((sweep / "runs").iterdir()):
            m = method_dir.name
            base, var = accuracies(args.zoo, m), accuracies(sweep, m)
            if not var["GLT"]:
                continue
            gap = np.mean(var["GLT"]) - np.mean(base["GLT"]) if base["GLT"] else float("nan")
            print(f"| {what} vs {default} | `{m}` | {' / '.join(cell(base[p]) for p in PROTOCOLS)} | "
                  f"{' / '.join(cell(var[p]) for p in PROTOCOLS)} | {gap:+.2f} |")
    if args.wall_seconds is not None:
        print(f"\nwall time: {args.wall_seconds} s")


if __name__ == "__main__":
    main()
