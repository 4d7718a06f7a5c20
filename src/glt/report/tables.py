"""Aggregate `glt run` results over seeds: methods x protocols x (accuracy, precision), mean ± std,
as Markdown, LaTeX (booktabs) or a summary dict."""

from __future__ import annotations

import math
import re
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


# ---- LaTeX ------------------------------------------------------------------------------------------

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
    ">": r"\textgreater{}", "|": r"\textbar{}",
}
_LATEX_RE = re.compile("|".join(map(re.escape, _LATEX_SPECIALS)))

# (column key in summarize(), header) per protocol
_MAIN_COLUMNS = (("accuracy", "Acc"), ("precision", "Prc"))
_FREQUENCY_COLUMNS = tuple((f"{g}_accuracy", g.capitalize()) for g in FREQUENCY_GROUPS)


def latex_escape(text: str) -> str:
    """`text` with LaTeX's special characters escaped: safe in text mode and inside \\texttt{}."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIALS[m.group()], str(text))


def _percent(x: float) -> str:
    return f"{100 * x:.2f}"


def latex_table(
    runs: list[tuple[Path, dict]],
    frequency: bool = False,
    title: str = "GLT results",
    label: str | None = None,
    names: dict[str, str] | None = None,
) -> str:
    r"""A booktabs `table` float: one row per method, one column group per protocol with Acc / Prc
    sub-columns (or Many / Medium / Few accuracy when `frequency`); percent, mean$\pm$std over seeds
    (std only with more than one seed); the best mean of each column in bold (ties at the printed
    precision all bold; no bold when a column has a single value). Method names are set in \texttt{}
    with LaTeX specials escaped, unless `names` maps a method to ready LaTeX."""
    df = long_table(runs)
    if df.empty:
        return "% (no results)\n"
    s = summarize(df).set_index(["method", "protocol"])
    methods = list(dict.fromkeys(df["method"]))
    protocols = [p for p in PROTOCOLS if p in set(df["protocol"])]
    columns = _FREQUENCY_COLUMNS if frequency else _MAIN_COLUMNS
    names = names or {}

    # printed mean / std per cell (None: no value); bold is decided on the printed means
    cells: dict[str, list[tuple[str, str | None] | None]] = {}
    for m in methods:
        row = []
        for p in protocols:
            for key, _ in columns:
                if (m, p) not in s.index or math.isnan(s.loc[(m, p), f"{key}_mean"]):
                    row.append(None)
                    continue
                r = s.loc[(m, p)]
                row.append((_percent(r[f"{key}_mean"]), _percent(r[f"{key}_std"]) if r["seeds"] > 1 else None))
        cells[m] = row
    best = []
    for j in range(len(protocols) * len(columns)):
        values = [float(cells[m][j][0]) for m in methods if cells[m][j] is not None]
        best.append(max(values) if len(values) > 1 else None)

    k = len(columns)
    seeds = sorted({int(n) for n in s["seeds"]})
    n = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}--{seeds[-1]}"
    stat = f"mean $\\pm$ std over {n} seeds" if seeds[-1] > 1 else "one seed"
    what = ("accuracy of the Many / Medium / Few frequency groups" if frequency
            else "accuracy (Acc) and macro precision (Prc)")
    caption = (f"{latex_escape(title)}: {what}, percent, {stat}; best of each column in bold. "
               "CLT: Train-GLT $\\to$ Test-CBL; GLT: Train-GLT $\\to$ Test-GBL; ALT: Train-CBL $\\to$ Test-GBL.")
    label = label or ("tab:glt-frequency" if frequency else "tab:glt-results")
    lines = [
        r"\begin{table}[t]", r"\centering", f"\\caption{{{caption}}}", f"\\label{{{label}}}",
        f"\\begin{{tabular}}{{l{'c' * (k * len(protocols))}}}", r"\toprule",
        " & ".join(["", *(f"\\multicolumn{{{k}}}{{c}}{{{p}}}" for p in protocols)]) + r" \\",
        " ".join(f"\\cmidrule(lr){{{2 + i * k}-{1 + (i + 1) * k}}}" for i in range(len(protocols))),
        " & ".join(["Method", *(h for _ in protocols for _, h in columns)]) + r" \\",
        r"\midrule",
    ]
    for m in methods:
        row = [names.get(m, f"\\texttt{{{latex_escape(m)}}}")]
        for j, cell in enumerate(cells[m]):
            if cell is None:
                row.append("--")
                continue
            mean, std = cell
            text = f"\\textbf{{{mean}}}" if best[j] is not None and float(mean) == best[j] else mean
            row.append(text + (f"$\\pm${std}" if std is not None else ""))
        lines.append(" & ".join(row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def latex_report(runs: list[tuple[Path, dict]], title: str = "GLT results") -> str:
    """The text of results.tex: the protocol table and the frequency-group table, paste-ready."""
    df = long_table(runs)
    if df.empty:
        return "% (no results)\n"
    seeds = summarize(df).groupby("method", sort=False)["seeds"].max()
    header = [
        f"% {' '.join(title.split())}: written by `glt report`. Needs \\usepackage{{booktabs}} in the preamble.",
        "% Seeds per method: " + ", ".join(f"{m} {int(n)}" for m, n in seeds.items()),
    ]
    tables = [latex_table(runs, title=title), latex_table(runs, frequency=True, title=title)]
    return "\n".join(header) + "\n\n" + "\n".join(tables)


# ---- model selection (glt report --select, docs/search.md) ----------------------------------------------------


def _pm_pair(pair: tuple[float, float] | None, seeds: int) -> str:
    return "-" if pair is None else _pm(pair[0], pair[1], seeds)


def _param_text(params: dict) -> str:
    if not params:
        return "defaults"
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(params.items()))


def selection_table(choices: dict, rule_label: str) -> str:
    """Markdown: one row per method, Acc / Prc per protocol at the chosen (trial, epoch), then the chosen
    hyper-parameters per method and protocol. `choices` is glt.report.select.select's result."""
    if not choices:
        return ("(nothing to select: no run logged this rule's metric at every epoch; the test-set oracle needs "
                "per-epoch test numbers, log_test_metrics=true)")
    methods = list(dict.fromkeys(m for m, _ in choices))
    protocols = [p for p in PROTOCOLS if any(p == q for _, q in choices)]
    header = ["method", "trials", "seeds", *(f"{p} {h}" for p in protocols for h in ("Acc", "Prc"))]
    lines = [f"Selected by {rule_label}.", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes = set()
    for m in methods:
        cs = [choices.get((m, p)) for p in protocols]
        trials = max(c.trials for c in cs if c)
        seeds = max(c.seeds for c in cs if c)
        row = [m, str(trials), str(seeds)]
        for c in cs:
            if c is None:
                row += ["-", "-"]
                continue
            mark = "*" if c.at_checkpoint else ""
            notes |= {"*"} if mark else set()
            row += [_pm_pair(c.test.get("accuracy"), c.seeds) + mark, _pm_pair(c.test.get("precision"), c.seeds) + mark]
        lines.append("| " + " | ".join(row) + " |")
    if notes:
        lines += ["", "\\* each run's best-val-accuracy checkpoint (its metrics.jsonl has no per-epoch test numbers)"]
    lines += ["", "| method | protocol | trial | epoch | selection score | hyper-parameters |", "|---|---|---|---|---|---|"]
    for m in methods:
        for p in protocols:
            c = choices.get((m, p))
            if c is not None:
                lines.append(f"| {m} | {p} | {c.trial} | {c.epoch} | {100 * c.score:.2f} | {_param_text(c.params)} |")
    return "\n".join(lines)


def selection_json(choices: dict) -> dict:
    """{method: {protocol: {trial, epoch, score, params, seeds, trials, metric: {mean, std}}}}: fractions."""
    out: dict = {}
    for (m, p), c in choices.items():
        out.setdefault(m, {})[p] = {
            "trial": c.trial, "epoch": c.epoch, "score": c.score, "params": c.params, "seeds": c.seeds,
            "trials": c.trials, "at_checkpoint": c.at_checkpoint,
            **{k: {"mean": v[0], "std": v[1]} for k, v in c.test.items()},
        }
    return out
