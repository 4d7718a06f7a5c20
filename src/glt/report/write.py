"""Write a report folder: results.json (summary), results.md, results.csv, results.tex and figures/."""

from __future__ import annotations

from pathlib import Path

from glt.io import write_json, write_text
from glt.report.plots import attribute_accuracy, environment_stats, per_class_accuracy
from glt.report.tables import (
    latex_report,
    long_table,
    protocol_table,
    summarize,
    summary_json,
)
from glt.runtime.layout import FIGURES, REPORT_CSV, REPORT_JSON, REPORT_MD, REPORT_TEX, SELECTION_JSON, SELECTION_MD


def write_report(runs, out: str | Path, title: str = "GLT results") -> str:
    out = Path(out)
    (out / FIGURES).mkdir(parents=True, exist_ok=True)
    table = protocol_table(runs)
    freq = protocol_table(runs, frequency=True)
    md = (
        f"# {title}\n\nPercent, mean ± std over seeds. CLT: train glt/train, test glt/test_cbl; "
        "GLT: train glt/train, test glt/test_gbl; ALT: train cbl/train, test cbl/test_gbl.\n\n"
        f"{table}\n\n## Accuracy by frequency group (Many / Medium / Few)\n\n{freq}\n\n"
        "![per-class accuracy](figures/per_class_accuracy.png)\n\n![accuracy by attribute](figures/attribute_accuracy.png)\n"
    )
    write_text(out / REPORT_MD, md)
    summary = summarize(long_table(runs))
    write_text(out / REPORT_CSV, summary.to_csv(index=False))
    write_json(out / REPORT_JSON, summary_json(runs))
    write_text(out / REPORT_TEX, latex_report(runs, title))  # booktabs tables for a paper
    per_class_accuracy(runs, out / FIGURES / "per_class_accuracy.png")
    attribute_accuracy(runs, out / FIGURES / "attribute_accuracy.png")
    if environment_stats(runs, out / FIGURES / "ifl_environments.png"):
        write_text(out / REPORT_MD, md + "\n![IFL environments](figures/ifl_environments.png)\n")
    return table



def selection_text(records: list[dict], rules: list[str]) -> str:
    """One Markdown table per selection rule (glt.report.select.RULES)."""
    from glt.report.select import RULES, select
    from glt.report.tables import selection_table

    return "\n\n".join(f"## {RULES.get(r).label}\n\n" + selection_table(select(records, r), RULES.get(r).label)
                        for r in rules)


def write_selection_report(records: list[dict], out: str | Path, rules: list[str], title: str = "GLT results") -> str:
    """selection.md (one table per rule) and selection.json ({rule: {method: {protocol: ...}}}) into `out`."""
    from glt.report.select import select
    from glt.report.tables import selection_json

    out = Path(out)
    text = selection_text(records, rules)
    write_text(out / SELECTION_MD, f"# {title}: model selection\n\nPercent, mean ± std over seeds at the "
               "selected trial and epoch (docs/search.md).\n\n" + text + "\n")
    write_json(out / SELECTION_JSON, {r: selection_json(select(records, r)) for r in rules})
    return text
