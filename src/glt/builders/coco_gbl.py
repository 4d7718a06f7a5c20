"""Test-GBL of MSCOCO-GLT: the greedy attribute-balancing selection (docs/coco.md, "Test-GBL: exact and vectorised"), exact and vectorised.

Per class, keep a running attribute histogram ``h`` (zeros). Repeat T times: among the remaining objects with at
least one present attribute, pick the one whose binary vector ``v`` gives the smallest standard deviation of
``(h + v) / sum(h + v)``; the earliest object in input order wins a tie.

With A attributes, ``var(x / S) = sum(x^2) / (A S^2) - 1 / A^2``, so minimising the std is minimising
``sum((h+v)^2) / sum(h+v)^2``: a ratio of integers, compared here exactly (the original compared float stds, so
on exact ties rounding noise could choose). Vectorised: ``sum((h+v)^2) = sum(h^2) + 2 h.v + |v|`` (v binary),
and ``h.v`` for all objects is one matrix-vector product, kept up to date incrementally: after picking ``v_p``,
``h.v`` grows by ``V v_p``, the sum of the columns of the attributes present in ``v_p`` (exact int64, a few
columns per pick instead of the whole matrix). Objects with the same ``k = |v|`` share the
denominator ``(|h| + k)^2``, so inside such a group the best is simply the smallest ``h.v`` (earliest on ties);
only the group winners (at most A) are compared as fractions, exactly, in Python integers.
"""

from __future__ import annotations

import numpy as np


def select_gbl(present: np.ndarray, picks: int) -> np.ndarray:
    """Rows of `present` (N, A) binary chosen by the greedy selection, in pick order.

    Raises ValueError when fewer than `picks` rows have a present attribute.
    """
    present = np.asarray(present).astype(bool)
    if present.ndim != 2:
        raise ValueError("present must be a 2-d (objects, attributes) array")
    a = present.shape[1]
    k_all = present.sum(axis=1).astype(np.int64)
    cand = np.flatnonzero(k_all > 0)
    if len(cand) < picks:
        raise ValueError(f"only {len(cand)} objects have a present attribute, {picks} requested")
    if picks <= 0:
        return np.zeros(0, dtype=np.int64)

    # candidates grouped by k = |v|; inside a group positions follow input order (stable sort)
    order = cand[np.argsort(k_all[cand], kind="stable")]
    ks = k_all[order]
    n = len(order)
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    group_k = ks[starts]
    # attribute-major copy: row j lists which candidates have attribute j (one contiguous row per column of V)
    vt = np.ascontiguousarray(present[order].T, dtype=np.uint8)
    if (picks * a + 1) * n >= np.iinfo(np.int64).max:  # h.v <= |h| <= picks * A
        raise ValueError("selection too large for exact int64 keys")

    pos = np.arange(n, dtype=np.int64)
    removed = np.zeros(n, dtype=bool)
    big = np.iinfo(np.int64).max
    h = np.zeros(a, dtype=np.int64)
    hv = np.zeros(n, dtype=np.int64)  # h.v of every candidate
    sum_h, sum_h2 = 0, 0
    chosen = np.empty(picks, dtype=np.int64)
    for t in range(picks):
        # key = (h.v, position): the per-group minimum is the group's best, earliest on ties
        key = hv * n + pos
        key[removed] = big
        gmin = np.minimum.reduceat(key, starts)
        live = gmin != big
        g_hv, g_pos, g_k = gmin[live] // n, gmin[live] % n, group_k[live]
        num = sum_h2 + 2 * g_hv + g_k  # sum((h+v)^2)
        den = sum_h + g_k  # sum(h+v); the ratio is num / den^2
        # float prefilter (relative error ~1e-15), then the exact comparison among the near-minimal groups
        ratio = num / den.astype(np.float64) ** 2
        near = np.flatnonzero(ratio <= ratio.min() * (1 + 1e-9))
        best = None
        for g in near.tolist():
            gn, gd, gi = int(num[g]), int(den[g]), int(order[g_pos[g]])
            if best is None:
                best = (gn, gd, gi, g)
                continue
            lhs, rhs = gn * best[1] ** 2, best[0] * gd**2
            if lhs < rhs or (lhs == rhs and gi < best[2]):
                best = (gn, gd, gi, g)
        p = int(g_pos[best[3]])
        removed[p] = True
        chosen[t] = order[p]
        cols = np.flatnonzero(present[order[p]])
        h[cols] += 1
        hv += vt[cols].sum(axis=0, dtype=np.int64)
        sum_h += int(ks[p])
        sum_h2 = int((h * h).sum())
    return chosen


def histogram_std(present: np.ndarray) -> float:
    """Std of the normalised attribute histogram of a set of binary vectors (the statistic Test-GBL minimises)."""
    counts = np.asarray(present, dtype=np.float64).sum(axis=0)
    total = counts.sum()
    return float((counts / total).std()) if total > 0 else 0.0
