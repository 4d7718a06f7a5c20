"""Model selection over a sweep: per method, which hyper-parameter trial and which epoch a rule picks, and
the test numbers there (DomainBed's way: per trial, the validation metric averaged over seeds at each epoch;
the best (trial, epoch); mean ± std over seeds of the test metrics at that epoch). `select` is a pure
function over records; `load_records` reads them from run folders (metrics.jsonl per epoch, docs/search.md)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glt.evaluation import PROTOCOLS
from glt.registry import Registry
from glt.runtime.layout import CONFIG, METRICS, TRIAL_FILE  # TRIAL_FILE: a sweep trial's record (glt.sweeps.records)

TEST_METRICS = ("accuracy", "precision", "worst_attribute_accuracy", "worst_class_accuracy")


@dataclass(frozen=True)
class Rule:
    label: str
    score: Callable[[dict], float | None]  # a record -> the number to maximise (None: not logged)
    oracle: bool = False  # reads the test set: an upper bound, never a default


def _val(key: str) -> Callable[[dict], float | None]:
    return lambda r: (r.get("val") or {}).get(key)


def _test_accuracy(r: dict) -> float | None:
    return (r.get("test") or {}).get("accuracy")


RULES: Registry[Rule] = Registry("selection rule")
RULES.add("val_accuracy", Rule("val accuracy", _val("accuracy")))  # the original's rule; the default
RULES.add("val_worst_attribute", Rule("val worst-attribute accuracy", _val("worst_attribute_accuracy")))
RULES.add("val_worst_class", Rule("val worst-class accuracy", _val("worst_class_accuracy")))
RULES.add("val_precision", Rule("val precision", _val("precision")))
RULES.add("oracle", Rule("test-set oracle (upper bound)", _test_accuracy, oracle=True))
RULE_ORDER = ("val_accuracy", "val_worst_attribute", "val_worst_class", "val_precision", "oracle")


@dataclass
class Choice:
    """What a rule picked for one (method, protocol)."""

    method: str
    protocol: str
    trial: str
    step: int  # index of the epoch in the run's last stage
    epoch: int
    score: float  # the rule's metric, mean over the trial's seeds
    params: dict[str, Any]
    seeds: int
    trials: int  # trials of the method with records for this protocol
    test: dict[str, tuple[float, float]] = field(default_factory=dict)  # metric -> (mean, std over seeds)
    at_checkpoint: bool = False  # test numbers of each run's best-val-accuracy checkpoint (no per-epoch test)


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


def select(records: list[dict], rule: str = "val_accuracy") -> dict[tuple[str, str], Choice]:
    """records: one per (method, trial, seed, protocol, selectable epoch of the last stage), each
    {"method", "trial", "seed", "protocol", "step", "epoch", "params", "val": {metric: x}, "test": {metric: x}
    or None, "final": {metric: x} (the run's protocol results, optional)}. For every (method, protocol): the
    (trial, step) with the highest mean over the trial's seeds of the rule's score, counting only steps every
    seed of the trial has a score at; ties go to the first trial (in name order), then the earliest step."""
    r = RULES.get(rule)
    groups: dict[tuple[str, str], dict[str, dict[int, dict[int, dict]]]] = {}
    for rec in records:
        key = (rec["method"], rec["protocol"])
        groups.setdefault(key, {}).setdefault(rec["trial"], {}).setdefault(int(rec["step"]), {})[rec["seed"]] = rec
    out = {}
    for (method, protocol), trials in groups.items():
        best = None
        for trial in sorted(trials):
            steps = trials[trial]
            seeds = set().union(*(s.keys() for s in steps.values()))
            for step in sorted(steps):
                at = steps[step]
                scores = [r.score(at[s]) for s in sorted(seeds) if s in at]
                if len(scores) != len(seeds) or not all(_finite(x) for x in scores):
                    continue
                mean = sum(scores) / len(scores)
                if best is None or mean > best[0]:
                    best = (mean, trial, step)
        if best is None:
            continue
        mean, trial, step = best
        at = trials[trial][step]
        first = at[min(at)]
        tests = [at[s].get("test") for s in sorted(at)]
        checkpoint = not all(tests) and rule == "val_accuracy"
        if checkpoint:  # no per-epoch test numbers: each run's own best-val-accuracy checkpoint (its protocol results)
            tests = [at[s].get("final") for s in sorted(at)]
        test = {}
        if all(tests):
            for m in TEST_METRICS:
                values = [t.get(m) for t in tests]
                if all(_finite(v) for v in values):
                    test[m] = _mean_std(values)
        out[(method, protocol)] = Choice(
            method, protocol, trial, step, int(first["epoch"]), mean, dict(first.get("params") or {}), len(at),
            len(trials), test, checkpoint and bool(test))
    return out


# ---- reading records from run folders -----------------------------------------------------------------------


def _split_entry(test: dict, split: str) -> dict | None:
    """The per-epoch test entry of `split` ("glt/test_gbl"), logged under its full or its short name."""
    return test.get(split) or test.get(split.partition("/")[2])


def _val_entry(line: dict) -> dict:
    return {m: line.get(f"val_{m}") for m in TEST_METRICS}


def _select_every(track_dir: Path) -> int:
    try:
        from omegaconf import OmegaConf

        return int(OmegaConf.load(track_dir / CONFIG).get("select_every", 1) or 1)
    except Exception:  # an old or hand-made folder: every epoch
        return 1


def _trial_of(run: Path) -> tuple[str, dict]:
    """(trial name, search-space draw) of a run folder: its sweep trial's record, else 'default'."""
    f = run.parent / TRIAL_FILE
    if f.is_file():
        try:
            d = json.loads(f.read_text())
            return str(d.get("trial", run.parent.name)), dict(d.get("draw") or {})
        except (OSError, ValueError):
            pass
    return "default", {}


def run_records(run: Path, result: dict) -> list[dict]:
    """The records of one `glt run` folder (its protocol results already read)."""
    trial, params = _trial_of(run)
    out = []
    for protocol, (track, split) in PROTOCOLS.items():
        path = run / track / METRICS
        if not path.is_file():
            continue
        lines = []
        for text in path.read_text().splitlines():
            try:
                lines.append(json.loads(text))
            except ValueError:
                continue
        if not lines:
            continue
        last_stage = max(int(x.get("stage_index", 0)) for x in lines)
        stage = [x for x in lines if int(x.get("stage_index", 0)) == last_stage]
        every, last_epoch = _select_every(run / track), max(int(x["epoch"]) for x in stage)
        for step, line in enumerate(stage):
            epoch = int(line["epoch"])
            if epoch % every and epoch != last_epoch:
                continue
            test = line.get("test")
            out.append({
                "method": result["method"], "trial": trial, "seed": int(result.get("seed", 0)),
                "protocol": protocol, "step": step, "epoch": epoch, "params": params, "val": _val_entry(line),
                "test": _split_entry(test, split) if isinstance(test, dict) else None,
                "final": result.get(protocol), "run": str(run),
            })
    return out


def load_records(runs: list[tuple[Path, dict]]) -> list[dict]:
    """Records of every run (the (folder, protocol results) pairs of glt.experiment.collect_results)."""
    return [rec for run, result in runs for rec in run_records(Path(run), result)]
