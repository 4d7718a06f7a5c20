"""How fast is the Test-GBL selection of MSCOCO-GLT (docs/benchmarks.md, MSCOCO-GLT, step 2)?

Two measurements, on random binary attribute vectors with a long-tailed attribute frequency:

1. One class of --objects objects x --attributes attributes, --picks picks: the straightforward greedy loop
   (scan every remaining object per pick, as the original code did; here with the exact integer comparison)
   against `glt.builders.coco_gbl.select_gbl`, in the same run, and the ratio. Both must pick the same objects.
2. The whole selection of MSCOCO-GLT: 29 classes of 188,426 objects in all, "person" 65,000 (the real total
   and largest class; the 28 other sizes follow a geometric profile down to 1,400, not the real ones),
   200 picks per class, `select_gbl` only.

    python benchmarks/coco_gbl_selection.py [--objects 20000] [--picks 200] [--present 10] [--skip-loop]

--present is the mean number of present attributes per object (COCO-Attributes' own sparsity is not known
here; objects with none occur and are skipped, as the recipe says).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from glt.builders.coco_gbl import histogram_std, select_gbl

TOTAL, PERSON, CLASSES = 188_426, 65_000, 29


def attribute_vectors(rng: np.random.Generator, n: int, a: int, present: float) -> np.ndarray:
    """n binary vectors: attribute j present with probability ~ (rank_j + 1)^-0.8 (a per-class random
    order of the attributes), scaled so an object has `present` attributes on average."""
    p = np.arange(1, a + 1, dtype=np.float64) ** -0.8
    p = np.minimum(p * present / p.sum(), 0.9)[rng.permutation(a)]
    return (rng.random((n, a)) < p).astype(np.uint8)


def straightforward(present: np.ndarray, picks: int) -> list[int]:
    """The loop the vectorised selection replaces: every pick scans every remaining object."""
    present = present.astype(np.int64)
    h = np.zeros(present.shape[1], dtype=np.int64)
    remaining = [i for i in range(len(present)) if present[i].any()]
    chosen = []
    for _ in range(picks):
        best = None
        for i in remaining:
            x = h + present[i]
            num, den = int((x * x).sum()), int(x.sum()) ** 2
            if best is None or num * best[1] < best[0] * den:
                best = (num, den, i)
        chosen.append(best[2])
        remaining.remove(best[2])
        h += present[best[2]]
    return chosen


def class_sizes(smallest: int = 1400) -> np.ndarray:
    """person, then 28 sizes on a geometric profile from the largest that makes the total right down to `smallest`."""
    lo, hi = float(smallest), float(PERSON)
    for _ in range(100):  # bisect the largest of the 28 so that they sum to TOTAL - PERSON
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.geomspace(mid, smallest, CLASSES - 1).sum() < TOTAL - PERSON else (lo, mid)
    rest = np.floor(np.geomspace(lo, smallest, CLASSES - 1)).astype(np.int64)
    rest[0] += TOTAL - PERSON - rest.sum()
    return np.r_[PERSON, rest]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=20_000)
    ap.add_argument("--attributes", type=int, default=204)
    ap.add_argument("--picks", type=int, default=200)
    ap.add_argument("--present", type=float, default=10.0, help="mean present attributes per object")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-loop", action="store_true", help="skip the straightforward loop (it takes about a minute)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    x = attribute_vectors(rng, args.objects, args.attributes, args.present)
    print(
        f"one class: {args.objects} objects x {args.attributes} attributes, {args.picks} picks, "
        f"{x.sum(1).mean():.1f} present per object, {(x.sum(1) == 0).mean():.1%} with none"
    )
    t = time.perf_counter()
    ours = select_gbl(x, args.picks).tolist()
    t_ours = time.perf_counter() - t
    print(f"  select_gbl:        {t_ours:8.3f} s   (histogram std {histogram_std(x[ours]):.5f}, "
          f"all objects {histogram_std(x):.5f})")
    if not args.skip_loop:
        t = time.perf_counter()
        ref = straightforward(x, args.picks)
        t_loop = time.perf_counter() - t
        print(f"  straightforward:   {t_loop:8.3f} s   same picks: {ref == ours}   speed-up: {t_loop / t_ours:.0f}x")
        if ref != ours:
            raise SystemExit("the two selections differ")

    sizes = class_sizes()
    print(f"all classes: {CLASSES} classes, {sizes.sum()} objects (largest {sizes[0]}, smallest {sizes[-1]}), "
          f"{args.picks} picks per class")
    t_gen = t_sel = 0.0
    for n in sizes.tolist():
        t = time.perf_counter()
        xc = attribute_vectors(rng, n, args.attributes, args.present)
        t_gen += time.perf_counter() - t
        t = time.perf_counter()
        select_gbl(xc, args.picks)
        t_sel += time.perf_counter() - t
    print(f"  select_gbl:        {t_sel:8.3f} s   (generating the vectors: {t_gen:.1f} s)")


if __name__ == "__main__":
    main()
