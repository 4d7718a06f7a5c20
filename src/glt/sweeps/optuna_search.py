"""`glt sweep --search optuna`: one Optuna study per method (TPE, seeded by --search-seed) in a storage the
user names, so that several machines can share it. Each trial trains in its own process; its first seed's
glt-track metrics.jsonl is read as it grows and each epoch's validation metric reported to Optuna, which
may prune the trial (the process is stopped, the trial recorded as pruned)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from glt.errors import GLTError
from glt.io import write_json
from glt.report.select import RULES, load_records, select
from glt.runtime.layout import METRICS, OPTUNA_DB, SWEEP_FILE
from glt.search.space import suggest
from glt.sweeps.folder import check_sweep_out
from glt.sweeps.launchers import LaunchOptions
from glt.sweeps.plan import method_space, new_record, trial_name
from glt.sweeps.records import (
    is_alive,
    load_trial,
    reconcile,
    save_trial,
    trial_file,
)
from glt.sweeps.worker import mark_exit, trial_command


class TrialFailed(Exception):
    """A trial whose training failed (recorded in its trial.json); Optuna marks it FAIL and goes on."""


def default_storage(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / OPTUNA_DB}"


def _epoch_lines(path: Path, done: int) -> list[dict]:
    """The complete lines of metrics.jsonl after the first `done`."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    lines = text.split("\n")[:-1]  # the last piece has no newline yet: still being written
    out = []
    for line in lines[done:]:
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({})
    return out


def trial_objective(out: Path, path: Path, rule: str) -> float:
    """The value Optuna maximises: the rule's score at its chosen epoch (mean over seeds), averaged over the
    two training tracks (glt for CLT / GLT, cbl for ALT)."""
    from glt.experiment import collect_results

    rec = load_trial(path)
    runs = collect_results([out / rec.runs[str(s)] for s in rec.seeds])
    choices = select(load_records(runs), rule)
    scores = [c.score for (m, p), c in choices.items() if p in ("CLT", "ALT")]
    if not scores:
        raise TrialFailed(f"{path}: no validation metric '{rule}' in the trial's metrics.jsonl")
    return sum(scores) / len(scores)


def _objective(s, method: str, opts: LaunchOptions, rule: str, poll: float):
    import optuna

    space, score = method_space(method), RULES.get(rule).score

    def objective(trial: optuna.Trial) -> float:
        name = trial.user_attrs.get("glt_trial") or trial_name("optuna", trial.number)
        trial.set_user_attr("glt_trial", name)
        params = suggest(space, trial)
        path = trial_file(s.out, method, name)
        rec = reconcile(path, new_record(s.out, method, name, s.record_settings(), params, "optuna"))
        save_trial(path, rec, status="queued", launcher="local", job_id=f"optuna trial {trial.number}")
        watched = s.out / rec.runs[str(rec.seeds[0])] / "glt" / METRICS
        proc = subprocess.Popen(trial_command(path, opts.nproc_per_node))
        step = 0
        while True:
            finished = proc.poll() is not None
            for line in _epoch_lines(watched, step):
                value = score({"val": {k[4:]: v for k, v in line.items() if k.startswith("val_")}})
                if value is not None:
                    trial.report(float(value), step)
                step += 1
                if trial.should_prune():
                    proc.terminate()
                    proc.wait()
                    save_trial(path, load_trial(path), status="pruned", pruned_step=step - 1,
                               error=None)
                    raise optuna.TrialPruned()
            if finished:
                break
            time.sleep(poll)
        status = mark_exit(path, proc.returncode)
        if status != "done":
            raise TrialFailed(load_trial(path).error or status)
        value = trial_objective(s.out, path, rule)
        save_trial(path, load_trial(path), objective=value)
        return value

    return objective


def _recover(study, s, method: str) -> None:
    """Trials this host started and whose process is gone (a killed sweep): failed in the study and asked
    again with the same values, into the same folder, so their runs resume."""
    import optuna

    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        name = t.user_attrs.get("glt_trial")
        path = trial_file(s.out, method, name) if name else None
        if path is None or not path.is_file() or is_alive(load_trial(path)) is not False:
            continue
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"glt_trial": name})


def optuna_sweep(s, opts: LaunchOptions, storage: str | None = None, pruner=None, objective: str = "val_accuracy",
                 poll: float = 0.5, study: str = "glt") -> None:
    """Run `s.trials` finished (complete or pruned) Optuna trials per method, counting those the study
    already holds; a study is named STUDY-METHOD in `storage`."""
    import optuna

    if RULES.get(objective).oracle:
        raise GLTError(f"--objective {objective} reads the test set; tune on a validation rule")
    if s.trials < 1:
        raise GLTError(f"--trials must be at least 1, not {s.trials}")
    check_sweep_out(s.out)
    storage = storage or default_storage(s.out)
    s.out.mkdir(parents=True, exist_ok=True)
    write_json(s.out / SWEEP_FILE, {"search": "optuna", "trials": s.trials, "methods": s.methods, "storage": storage,
                                    **s.record_settings(), "started": time.time()})
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    done_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    for method in s.methods:
        try:
            study_ = optuna.create_study(
                study_name=f"{study}-{method}", storage=storage, direction="maximize", load_if_exists=True,
                sampler=optuna.samplers.TPESampler(seed=s.search_seed), pruner=pruner or optuna.pruners.MedianPruner())
        except Exception as e:  # a bad URL, a missing database driver, an unreachable server: one line
            raise GLTError(f"--storage {storage}: {type(e).__name__}: {(str(e).splitlines() or [''])[0]}") from None
        _recover(study_, s, method)
        left = s.trials - len(study_.get_trials(deepcopy=False, states=done_states))
        if left > 0:
            study_.optimize(_objective(s, method, opts, objective, poll), n_trials=left, n_jobs=max(1, opts.jobs),
                           catch=(TrialFailed,),
                           callbacks=[optuna.study.MaxTrialsCallback(s.trials, states=done_states)])
