"""Every file name of the folders glt writes, each with one meaning, and the layouts (patterns) that
`--overwrite` may remove.

A training folder (`glt train --out`; each track of a `glt run` folder; glt.runtime.run_dir.RunDir):

    config.yaml              the resolved config
    metrics.jsonl            one JSON line per epoch
    checkpoints/last.pt      the resume checkpoint;  checkpoints/best.pt  the best validation epoch
    predictions/<split>.csv  (id,prediction) for each test split of the track
    eval.json                metrics of each test split; its presence marks the run complete
    .glt.lock                while a training runs
    tensorboard/             event files (tensorboard=true, `glt report --tensorboard`)

A `glt run` folder: glt/ and cbl/ (training folders) and protocols.json, the CLT / GLT / ALT metrics.
glt before this layout named that file results.json, the name of a report's summary: an old folder's
results.json is still read (`protocols_file`), never written, and replaced when glt rewrites the folder.

A report folder (`glt report --out`, a sweep, the demo): results.json (the summary over seeds),
results.md, results.csv, results.tex, figures/. A sweep puts its runs in runs/<method>/seed<seed>/.
"""

from __future__ import annotations

import os
from pathlib import Path

from glt.io import write_json

# ---- a training folder ----------------------------------------------------------------------------------
CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
LAST = f"{CHECKPOINTS}/last.pt"
BEST = f"{CHECKPOINTS}/best.pt"
PREDICTIONS = "predictions"
EVAL = "eval.json"
LOCK = ".glt.lock"
TENSORBOARD = "tensorboard"
TEMP = ".*.tmp"  # glt.io.atomic_path's temporary files, left behind by a kill (a pattern)


def predictions_file(split: str) -> str:
    """The predictions of split 'glt/test_gbl': predictions/glt__test_gbl.csv."""
    return f"{PREDICTIONS}/{split.replace('/', '__')}.csv"


# ---- a `glt run` folder ---------------------------------------------------------------------------------
TRACKS = ("glt", "cbl")
PROTOCOLS = "protocols.json"
OLD_PROTOCOLS = "results.json"  # what glt wrote before PROTOCOLS: read, never written


def write_protocols(folder: str | os.PathLike, summary: dict) -> Path:
    """Write protocols.json; an older glt's results.json beside it is superseded and removed."""
    folder = Path(folder)
    write_json(folder / PROTOCOLS, summary)
    (folder / OLD_PROTOCOLS).unlink(missing_ok=True)
    return folder / PROTOCOLS


def protocols_file(folder: str | os.PathLike) -> Path | None:
    """The protocol results of a `glt run` folder: protocols.json, else an old folder's results.json, else None."""
    for name in (PROTOCOLS, OLD_PROTOCOLS):
        path = Path(folder) / name
        if path.is_file():
            return path
    return None


# ---- a report folder, a sweep, the demo -----------------------------------------------------------------
REPORT_JSON = "results.json"
REPORT_MD = "results.md"
REPORT_CSV = "results.csv"
REPORT_TEX = "results.tex"
FIGURES = "figures"
RUNS = "runs"
# a search sweep (glt.sweeps): its record, one folder per trial, model selection, Optuna's default study, Slurm logs
SWEEP_FILE = "sweep.json"  # marks a folder as a search sweep (and records how it was started)
TRIALS = "trials"  # trials/<method>/<trial>/{trial.json, seed<N>/...}
TRIAL_FILE = "trial.json"
SELECTION_MD = "selection.md"
SELECTION_JSON = "selection.json"
OPTUNA_DB = "optuna.db"
SLURM = "slurm"
BENCHMARK = "benchmark"  # the demo's benchmark folder


def sweep_run(out: str | os.PathLike, method: str, seed: int) -> Path:
    """Where a sweep puts one (method, seed) `glt run` folder."""
    return Path(out) / RUNS / method / f"seed{seed}"


# ---- layouts: the files glt writes, as patterns relative to the folder (fnmatch: `*` also matches `/`) ----
RUN_LAYOUT = (
    CONFIG, METRICS, EVAL, LOCK, TEMP,
    f"{CHECKPOINTS}/*.pt", f"{CHECKPOINTS}/{TEMP}", f"{PREDICTIONS}/*.csv", f"{PREDICTIONS}/{TEMP}",
    f"{TENSORBOARD}/*",
)
PROTOCOL_LAYOUT = (PROTOCOLS, OLD_PROTOCOLS, TEMP, *(f"{t}/{p}" for t in TRACKS for p in RUN_LAYOUT))
REPORT_LAYOUT = (REPORT_JSON, REPORT_MD, REPORT_CSV, REPORT_TEX, TEMP, f"{FIGURES}/*")
SWEEP_LAYOUT = (
    *REPORT_LAYOUT, SWEEP_FILE, SELECTION_MD, SELECTION_JSON, OPTUNA_DB, f"{SLURM}/*",
    *(f"{RUNS}/*/seed*/{p}" for p in PROTOCOL_LAYOUT),
    f"{TRIALS}/*/*/{TRIAL_FILE}", *(f"{TRIALS}/*/*/seed*/{p}" for p in PROTOCOL_LAYOUT),
)
# a feature store (`glt features`, glt.features.store): its record, per split the features, ids, progress
STORE_RECORD = "store.json"
STORE_LAYOUT = (STORE_RECORD, "*/*.npy", "*/*.progress.json", TEMP, f"*/{TEMP}")
# the demo's benchmark: `glt build digits` (+ `glt cache`)
DIGITS_LAYOUT = ("manifest.json", "splits/*", "images/*", "arrays/*", "cache/*", TEMP)
DEMO_LAYOUT = (*SWEEP_LAYOUT, *(f"{BENCHMARK}/{p}" for p in DIGITS_LAYOUT))
