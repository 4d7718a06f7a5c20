"""Aggregate `glt run` results over seeds: methods x protocols x (accuracy, precision), mean ± std."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from glt.benchmark.manifest import FREQUENCY_GROUPS
from glt.evaluation import PROTOCOLS

METRICS = ("accuracy", "precision", "f1")


def long_table(runs: list[tuple[Path, dict]]) -> pd.DataFrame:
    """One row per (run, protocol) with the overall, frequency-group and worst-attribute numbers."""
    rows = []
    for path, r in runs:
        for protocol in PROTOCOLS:
            if protocol not in r:
                continue
            m = r[protocol]
            row = {"method": r["method"], "seed": r.get("seed", 0), "protocol": protocol, "run": str(path)}
            row.update({k: m[k] for k in METRICS})
            for g in FREQUENCY_GROUPS:
                row[f"{g}_accuracy"] = m.get("by_frequency", {}).get(g, {}).get("accuracy", math.nan)
            row["worst_attribute_accuracy"] = m.get("worst_attribute_accuracy", math.nan)
            rows.append(row)
    return pd.DataFrame(rows)


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and count over seeds for each (method, protocol)."""
    value_cols = [c for c in df.columns if c not in ("method", "seed", "protocol", "run")]
    g = df.groupby(["method", "protocol"], sort=False)[value_cols]
    mean, std = g.mean(), g.std(ddof=1).fillna(0.0)
    out = mean.add_suffix("_mean").join(std.add_suffix("_std"))
    out["seeds"] = g.size()
    return out.reset_index()


def _pm(mean: float, std: float, seeds: int) -> str:
    if isinstance(mean, float) and math.isnan(mean):
        return "-"
    return f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if seeds > 1 else "")


def protocol_table(runs: list[tuple[Path, dict]], frequency: bool = False) -> str:
    """Markdown: one row per method, Acc / Prc per protocol (percent, mean ± std over seeds)."""
    df = long_table(runs)
    if df.empty:
        return "(no results)"
    s = summarize(df)
    methods = list(dict.fromkeys(df["method"]))
    protocols = [p for p in PROTOCOLS if p in set(df["protocol"])]
    header = ["method", "seeds"]
    for p in protocols:
        header += [f"{p} Acc", f"{p} Prc"]
        if frequency:
            header += [f"{p} {g.capitalize()}" for g in FREQUENCY_GROUPS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in methods:
        sm = s[s.method == m].set_index("protocol")
        row = [m, str(int(sm["seeds"].max()))]
        for p in protocols:
            if p not in sm.index:
                row += ["-", "-"] + (["-"] * 3 if frequency else [])
                continue
            r = sm.loc[p]
            n = int(r["seeds"])
            row += [_pm(r["accuracy_mean"], r["accuracy_std"], n), _pm(r["precision_mean"], r["precision_std"], n)]
            if frequency:
                row += [_pm(r[f"{g}_accuracy_mean"], r[f"{g}_accuracy_std"], n) for g in FREQUENCY_GROUPS]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def summary_json(runs: list[tuple[Path, dict]]) -> dict:
    """{method: {protocol: {metric: {mean, std}, seeds}}}: fractions in [0, 1]."""
    s = summarize(long_table(runs))
    out: dict = {}
    for _, r in s.iterrows():
        entry = {k: {"mean": float(r[f"{k}_mean"]), "std": float(r[f"{k}_std"])}
                 for k in (*METRICS, *(f"{g}_accuracy" for g in FREQUENCY_GROUPS), "worst_attribute_accuracy")}
        entry["seeds"] = int(r["seeds"])
        out.setdefault(r["method"], {})[r["protocol"]] = {
            k: (v if not isinstance(v, dict) or not np.isnan(v["mean"]) else None) for k, v in entry.items()
        }
    return out
