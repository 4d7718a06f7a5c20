"""`glt report` LaTeX output: the numbers in results.tex, read back, against the run folders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from glt.cli.main import main
from glt.evaluation import evaluate
from glt.io import write_json
from glt.report.tables import latex_escape, latex_table

PROTOCOLS = ("CLT", "GLT", "ALT")
GROUPS = ("many", "medium", "few")
# method -> (seeds, protocols it has): logit_adj has a single seed (no std) and no ALT result
METHODS = {"ce": (3, PROTOCOLS), "ifl+blsoftmax": (3, PROTOCOLS), "logit_adj": (1, ("CLT", "GLT"))}
NUM_CLASSES = 6


def cli(*args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    return e.value.code


def _metrics(rng, skill: float, n: int = 240) -> dict:
    labels = rng.integers(0, NUM_CLASSES, n)
    pred = np.where(rng.random(n) < skill, labels, rng.integers(0, NUM_CLASSES, n))
    return evaluate(labels, pred, NUM_CLASSES, frequency=np.minimum(labels // 2, 2),
                    attribute=rng.integers(0, 3, n), num_attributes=3)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """results.json files as `glt run` writes them (metrics from glt.evaluation.evaluate on random
    predictions), one folder per (method, seed) as `glt sweep` lays them out."""
    root = tmp_path_factory.mktemp("latex") / "runs"
    rng = np.random.default_rng(7)
    for i, (method, (seeds, protocols)) in enumerate(METHODS.items()):
        for seed in range(seeds):
            res = {"method": method, "seed": seed, "benchmark": "synthetic",
                   **{p: _metrics(rng, 0.3 + 0.15 * i + 0.05 * rng.random()) for p in protocols},
                   "train_class_counts": {"glt": [40, 20, 10, 8, 6, 4], "cbl": [20] * NUM_CLASSES}}
            write_json(root / method / f"seed{seed}" / "results.json", res)
    return root


@pytest.fixture(scope="module")
def report(runs_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report"
    assert cli("report", runs_dir, "--out", out, "--title", "Tiny & quick") == 0
    return out


def _reference(runs_dir: Path) -> dict:
    """{(method, protocol, metric): (mean, std, seeds)} straight from the results.json files with numpy."""
    values: dict = {}
    for f in sorted(runs_dir.rglob("results.json")):
        r = json.loads(f.read_text())
        for p in PROTOCOLS:
            if p in r:
                m = r[p]
                for key in ("accuracy", "precision"):
                    values.setdefault((r["method"], p, key), []).append(m[key])
                for g in GROUPS:
                    values.setdefault((r["method"], p, f"{g}_accuracy"), []).append(m["by_frequency"][g]["accuracy"])
    return {k: (np.mean(v), np.std(v, ddof=1) if len(v) > 1 else None, len(v)) for k, v in values.items()}


# ---- reading results.tex back ------------------------------------------------------------------------

UNESCAPE = {r"\textbackslash{}": "\\", r"\&": "&", r"\%": "%", r"\$": "$", r"\#": "#", r"\_": "_", r"\{": "{",
            r"\}": "}", r"\textasciitilde{}": "~", r"\textasciicircum{}": "^", r"\textless{}": "<",
            r"\textgreater{}": ">", r"\textbar{}": "|"}
CELL = re.compile(r"^(?:\\textbf\{(?P<bold>\d+\.\d\d)\}|(?P<plain>\d+\.\d\d))(?:\$\\pm\$(?P<std>\d+\.\d\d))?$")


def _unescape(text: str) -> str:
    return re.sub("|".join(map(re.escape, UNESCAPE)), lambda m: UNESCAPE[m.group()], text)


def parse_tables(tex: str) -> list[dict]:
    """Each table of a .tex: {"protocols", "columns", "rows": {method: [cell]}} where a cell is None
    ("--") or (mean, std or None, bold)."""
    tables = []
    for body in re.findall(r"\\begin\{tabular\}.*?\\end\{tabular\}", tex, flags=re.DOTALL):
        lines = body.splitlines()
        top, mid, bottom = lines.index(r"\toprule"), lines.index(r"\midrule"), lines.index(r"\bottomrule")
        spans = re.findall(r"\\multicolumn\{(\d+)\}\{c\}\{(\w+)\}", lines[top + 1])
        header = lines[mid - 1].removesuffix(r" \\").split(" & ")
        rows = {}
        for line in lines[mid + 1:bottom]:
            name, *cells = line.removesuffix(r" \\").split(" & ")
            assert len(cells) == len(header) - 1
            method = _unescape(re.fullmatch(r"\\texttt\{(.*)\}", name).group(1))
            parsed = []
            for c in cells:
                if c == "--":
                    parsed.append(None)
                    continue
                m = CELL.match(c)
                assert m, c
                std = float(m["std"]) if m["std"] else None
                parsed.append((float(m["bold"] or m["plain"]), std, bool(m["bold"])))
            rows[method] = parsed
        tables.append({"spans": [(int(k), p) for k, p in spans], "columns": header[1:], "rows": rows})
    return tables


KEYS = {"Acc": "accuracy", "Prc": "precision",
        "Many": "many_accuracy", "Medium": "medium_accuracy", "Few": "few_accuracy"}


def _cells(table):
    """(method, protocol, metric key, parsed cell) for every cell of a parsed table."""
    protocols = [p for k, p in table["spans"] for _ in range(k)]
    for method, cells in table["rows"].items():
        for protocol, col, cell in zip(protocols, table["columns"], cells):
            yield method, protocol, KEYS[col], cell


# ---- tests ----------------------------------------------------------------------------------------------

def test_tex_is_booktabs_and_paste_ready(report):
    tex = (report / "results.tex").read_text()
    assert tex.startswith("%") and r"\usepackage{booktabs}" in tex.splitlines()[0]
    for cmd in (r"\toprule", r"\midrule", r"\bottomrule", r"\cmidrule(lr){2-3}", r"\multicolumn{2}{c}{CLT}",
                r"\multicolumn{3}{c}{ALT}", r"\begin{tabular}{lcccccc}", r"\begin{tabular}{lccccccccc}"):
        assert cmd in tex, cmd
    assert r"\caption{Tiny \& quick:" in tex  # the title is escaped too
    assert "±" not in tex  # $\pm$, not the unicode sign (pdflatex)
    for line in tex.splitlines():  # braces balance on each line (no escape swallowed one)
        unescaped = line.replace(r"\{", "").replace(r"\}", "")
        assert unescaped.count("{") == unescaped.count("}"), line


def test_tex_numbers_match_the_runs_csv_and_json(report, runs_dir):
    ref = _reference(runs_dir)
    csv = pd.read_csv(report / "results.csv").set_index(["method", "protocol"])
    summary = json.loads((report / "results.json").read_text())
    main_table, freq_table = parse_tables((report / "results.tex").read_text())
    assert list(main_table["rows"]) == list(METHODS) == list(freq_table["rows"])
    assert main_table["columns"] == ["Acc", "Prc"] * 3 and freq_table["columns"] == ["Many", "Medium", "Few"] * 3
    checked = 0
    for table in (main_table, freq_table):
        for method, protocol, key, cell in _cells(table):
            if (method, protocol, key) not in ref:
                assert cell is None and protocol not in METHODS[method][1]
                assert (method, protocol) not in csv.index and protocol not in summary[method]
                continue
            mean, std, seeds = ref[(method, protocol, key)]
            tol = 0.005 + 1e-9  # printed with two decimals, in percent
            assert cell[0] == pytest.approx(100 * mean, abs=tol)
            assert cell[0] == pytest.approx(100 * csv.loc[(method, protocol), f"{key}_mean"], abs=tol)
            assert cell[0] == pytest.approx(100 * summary[method][protocol][key]["mean"], abs=tol)
            if seeds == 1:
                assert cell[1] is None
            else:
                assert cell[1] == pytest.approx(100 * std, abs=tol)
                assert cell[1] == pytest.approx(100 * csv.loc[(method, protocol), f"{key}_std"], abs=tol)
                assert cell[1] == pytest.approx(100 * summary[method][protocol][key]["std"], abs=tol)
            checked += 1
    assert checked == 2 * (2 + 3) * 3 + (2 + 3) * 2


def test_bold_goes_to_the_best_mean_of_each_column(report, runs_dir):
    ref = _reference(runs_dir)
    for table in parse_tables((report / "results.tex").read_text()):
        columns: dict = {}
        for method, protocol, key, cell in _cells(table):
            if cell is not None:
                columns.setdefault((protocol, key), []).append((method, cell))
        for (protocol, key), col in columns.items():
            means = {m: ref[(m, protocol, key)][0] for m, _ in col}
            best = max(round(100 * v, 2) for v in means.values())
            bold = {m for m, cell in col if cell[2]}
            if len(col) == 1:
                assert not bold  # nothing to compare with
                continue
            assert max(means, key=means.get) in bold, (protocol, key)  # the true maximum
            assert bold == {m for m, v in means.items() if round(100 * v, 2) == best}  # and ties at print precision


def _run(method, accs, precs=None):
    """In-memory runs with CLT accuracy / precision only (no frequency groups)."""
    return [(Path(f"{method}/seed{i}"),
             {"method": method, "seed": i, "CLT": {"accuracy": a, "precision": p, "f1": 0.0}})
            for i, (a, p) in enumerate(zip(accs, precs or accs))]


def test_bold_uses_the_mean_not_the_best_seed():
    # a: best single seed (0.9) but mean 0.5; b: mean 0.6; c: precision tie with b at 0.7
    runs = _run("a", [0.9, 0.1], [0.2, 0.2]) + _run("b", [0.6, 0.6], [0.7, 0.7]) + _run("c", [0.55, 0.55], [0.7, 0.7])
    rows = parse_tables(latex_table(runs))[0]["rows"]
    assert [cell[2] for cell in rows["a"]] == [False, False]
    assert [cell[2] for cell in rows["b"]] == [True, True]
    assert [cell[2] for cell in rows["c"]] == [False, True]
    assert rows["a"][0][:2] == (50.0, pytest.approx(100 * np.std([0.9, 0.1], ddof=1), abs=0.005))
    single = parse_tables(latex_table(_run("only", [0.4])))[0]["rows"]["only"]
    assert single == [(40.0, None, False), (40.0, None, False)]


def test_latex_specials_in_method_names_are_escaped():
    weird = r"ifl+my_method&co 100% $x$ #1 {a} ~b^c \d <e>|f"
    tex = latex_table(_run(weird, [0.5]) + _run("ce", [0.25]))
    row = next(line for line in tex.splitlines() if line.startswith(r"\texttt{ifl"))
    assert row.startswith(
        r"\texttt{ifl+my\_method\&co 100\% \$x\$ \#1 \{a\} \textasciitilde{}b\textasciicircum{}c "
        r"\textbackslash{}d \textless{}e\textgreater{}\textbar{}f} & "
    )
    assert list(parse_tables(tex)[0]["rows"]) == [weird, "ce"]
    assert latex_escape("logit_adj") == r"logit\_adj"
    # a ready LaTeX name is used as given
    assert r"IFL+CE & " in latex_table(_run("ifl+ce", [0.5]), names={"ifl+ce": "IFL+CE"})
