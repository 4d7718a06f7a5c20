"""The IFL environment figure of a report: what each rebuilt environment samples, per rebuild.

One row per IFL-style method (its first run), columns: effective sample size, class imbalance, then the
share of each attribute (group) in its own panel. Environments are told apart by colour and marker, with a
legend naming what each environment is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from glt.runtime.layout import CONFIG, METRICS
from glt.runtime.tensorboard import read_records

MARKERS = ("o", "s", "^", "D", "v")

# what environment k holds under each rule of wrapper_args.env_rule (glt/methods/environments.py)
ENV_LABELS = {
    "intra": ("all samples, weight 1", "badly predicted samples up-weighted inside each class"),
    "inter": ("all samples, weight 1", "badly predicted samples up-weighted over the whole set"),
    "inter_intra": ("all samples, weight 1", "badly predicted samples up-weighted (set x class)"),
    "correctness": ("correctly predicted samples", "mispredicted samples"),
    "uniform": ("all samples, weight 1", "all samples, weight 1"),
}


def environment_records(run_folder: Path, track: str = "glt") -> list[dict]:
    """The IFL environment statistics logged at each rebuild of a run (empty for other methods)."""
    records = read_records(Path(run_folder) / track / METRICS, missing_ok=True)
    return [rec["ifl_environments"] for rec in records if "ifl_environments" in rec]


def environment_rule(run_folder: Path, track: str = "glt") -> str | None:
    """wrapper_args.env_rule of the run's resolved config, None when it cannot be read."""
    try:
        import yaml

        cfg = yaml.safe_load((Path(run_folder) / track / CONFIG).read_text())
        return str(cfg["wrapper_args"]["env_rule"])
    except (OSError, KeyError, TypeError, ImportError, ValueError):
        return None


def environment_label(e: int, rule: str | None) -> str:
    names = ENV_LABELS.get(rule or "")
    if names is None:
        return f"e{e + 1}"
    return f"e{e + 1}: {names[min(e, 1)]}"


def draw_environment_stats(picked: dict[str, tuple[list[dict], str | None]]) -> Figure:
    """`picked`: method -> (its environment records, its env_rule). The figure, not saved."""
    num_attr = max((len(recs[0]["environments"][0].get("attribute_share", [])) for recs, _ in picked.values()),
                   default=0)
    cols = 2 + num_attr
    fig = Figure(figsize=(3.3 * cols, 3.0 * len(picked) + 0.6), layout="constrained")
    axes = fig.subplots(len(picked), cols, squeeze=False)
    for row, (method, (recs, rule)) in zip(axes, picked.items()):
        epochs = [int(rec["epoch"]) for rec in recs]
        for e in range(len(recs[0]["environments"])):
            envs = [rec["environments"][e] for rec in recs]
            style = dict(color=f"C{e}", marker=MARKERS[e % len(MARKERS)], ms=6, label=environment_label(e, rule))
            row[0].plot(epochs, [x["effective_size"] for x in envs], **style)
            row[1].plot(epochs, [x["class_imbalance"] for x in envs], **style)
            if "attribute_share" in envs[0]:
                shares = np.array([x["attribute_share"] for x in envs])
                for a in range(shares.shape[1]):
                    row[2 + a].plot(epochs, shares[:, a], **style)
        row[0].set_title(f"{method}: effective sample size", fontsize=9)
        row[0].set_ylabel("images (Kish)")
        row[0].set_ylim(bottom=0)
        row[1].set_title(f"{method}: class imbalance (1 = class-balanced)", fontsize=9)
        row[1].set_ylabel("largest / smallest class mass")
        row[1].set_yscale("log")
        row[1].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        for a in range(num_attr):
            head = " (head)" if a == 0 else " (rarest)" if a == num_attr - 1 else ""
            row[2 + a].set_title(f"{method}: share of attribute {a}{head}", fontsize=9)
            row[2 + a].set_ylabel("share of the sampling mass")
            row[2 + a].set_ylim(bottom=0, top=1.15 * row[2 + a].get_ylim()[1])
        for ax in row:
            ax.set_xlabel("rebuilt after epoch")
            if len(epochs) <= 8:
                ax.set_xticks(epochs)  # the rebuild epochs themselves: whole numbers
            else:  # rebuilt after every epoch (irm): every tick would overlap
                ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=8))
            ax.margins(x=0.15)
            ax.grid(alpha=0.3)
    # one legend for the figure: the same colour and marker is the same environment in every panel
    handles = {}
    for ax in axes.ravel():
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(list(handles.values()), list(handles), loc="outside upper center", ncol=min(len(handles), 3), fontsize=8,
               title="IFL environments, rebuilt from the model's scores on Train-GLT (track glt)", title_fontsize=9)
    return fig


def pick_environment_runs(runs) -> dict[str, tuple[list[dict], str | None]]:
    """For the first run of each IFL-style method: its records and environment rule."""
    picked: dict[str, tuple[list[dict], str | None]] = {}
    for folder, r in runs:
        if r["method"] in picked:
            continue
        recs = environment_records(folder)
        if recs:
            picked[r["method"]] = (recs, environment_rule(folder))
    return picked


def environment_stats(runs, path: Path) -> Path | None:
    """For the first run of each IFL-style method: per rebuild, each environment's effective size, class
    imbalance and attribute shares (the rare attributes' share should grow in the built environments).
    None (nothing drawn) when no run logged environments."""
    picked = pick_environment_runs(runs)
    if not picked:
        return None
    fig = draw_environment_stats(picked)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    return path
