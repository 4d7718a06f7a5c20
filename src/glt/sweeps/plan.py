"""Which trials a sweep trains: one per method at its defaults (--search none), or N seeded random draws of
each method's search space (--search random). Optuna's trials are asked for as the sweep runs (optuna_search)."""

from __future__ import annotations

from pathlib import Path

from glt.experiment import run_folder
from glt.search.space import COMMON_SPACE, draw
from glt.sweeps.records import TrialRecord, trial_dir

DEFAULT_TRIAL = "default"


def method_space(method: str) -> dict:
    """The method's search space: MethodSpec.search_space() (common < base < wrapper) where the method
    registry has it, else the common optimiser space."""
    from glt.methods import resolve_method

    spec = resolve_method(method)
    space = getattr(spec, "search_space", None)
    return dict(space()) if callable(space) else dict(COMMON_SPACE)


def trial_name(search: str, index: int) -> str:
    return {"random": "t", "optuna": "o"}[search] + f"{index:03d}"


def seed_runs(sweep: Path, method: str, trial: str, seeds: list[int]) -> dict[str, str]:
    """seed -> run folder relative to the sweep: a --search none sweep keeps `glt sweep`'s runs/METHOD/seedN."""
    if trial == DEFAULT_TRIAL:
        return {str(s): str(run_folder(".", method, s)) for s in seeds}
    base = trial_dir(".", method, trial)
    return {str(s): str(base / f"seed{s}") for s in seeds}


def new_record(sweep: Path, method: str, trial: str, settings: dict, params: dict | None = None,
               search: str = "none") -> TrialRecord:
    return TrialRecord(
        method=method, trial=trial, benchmark=str(settings["benchmark"]), seeds=list(settings["seeds"]),
        search=search, search_seed=int(settings.get("search_seed", 0)), draw=dict(params or {}),
        user_overrides=list(settings.get("overrides", ())), yaml_file=settings.get("yaml_file"),
        preset=settings.get("preset"), runs=seed_runs(sweep, method, trial, list(settings["seeds"])),
    )


def plan_trials(sweep: Path, methods: list[str], settings: dict, search: str, trials: int) -> list[TrialRecord]:
    """Every trial of a none / random sweep, in order (method by method)."""
    out = []
    for m in methods:
        if search == "none":
            out.append(new_record(sweep, m, DEFAULT_TRIAL, settings))
            continue
        space = method_space(m)
        for i in range(trials):
            params = draw(space, int(settings.get("search_seed", 0)), m, i)
            out.append(new_record(sweep, m, trial_name(search, i), settings, params, search))
    return out
