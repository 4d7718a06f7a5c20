"""Launchers: how a sweep starts its trials. A registry (name -> function(trial files, options)), so a new
cluster is one more entry: `local` (in this process one after another, or --jobs N subprocesses at a time),
`torchrun` (each trial as `torchrun --nproc-per-node N`), `slurm` (each trial a job through submitit)."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from glt.io import read_json, write_json
from glt.registry import Registry
from glt.runtime.layout import SLURM
from glt.sweeps.records import load_trial, save_trial
from glt.sweeps.worker import mark_exit, run_trial, trial_command

LAUNCHERS: Registry = Registry("launcher")
JOBS_FILE = "slurm/jobs.json"  # trial record (relative to the sweep) -> Slurm job id


@dataclass
class LaunchOptions:
    jobs: int = 1  # trials at a time (local, torchrun)
    nproc_per_node: int = 1  # processes (GPUs) per trial: torchrun, slurm
    partition: str | None = None
    time_min: int = 240
    gpus_per_job: int = 0
    cpus_per_job: int | None = None
    mem_gb: float | None = None
    array_parallelism: int = 32  # Slurm array throttle (--array=...%N)
    wait: bool = False  # slurm: wait for the jobs (then the sweep reports)
    cluster: str | None = None  # submitit's cluster: None (Slurm, found by submitit), "local", "debug"
    slurm_extra: tuple[str, ...] = ()  # more sbatch options, KEY=VALUE


def _processes(trials: list[Path], opts: LaunchOptions, nproc: int, torchrun: bool) -> None:
    """Each trial in its own process(es), `opts.jobs` at a time."""
    def one(path: Path) -> str:
        return mark_exit(path, subprocess.call(trial_command(path, nproc, torchrun)))

    with ThreadPoolExecutor(max(1, opts.jobs)) as pool:
        list(pool.map(one, trials))


@LAUNCHERS.register("local")
def launch_local(trials: list[Path], opts: LaunchOptions) -> None:
    if opts.jobs <= 1:
        for path in trials:  # in this process: no start-up cost per trial
            run_trial(path)
    else:
        _processes(trials, opts, 1, torchrun=False)


@LAUNCHERS.register("torchrun")
def launch_torchrun(trials: list[Path], opts: LaunchOptions) -> None:
    _processes(trials, opts, opts.nproc_per_node, torchrun=True)


def slurm_executor(folder: str | Path, opts: LaunchOptions, name: str = "glt-sweep"):
    """A submitit executor for the sweep's trials: one task per job holding `gpus_per_job` GPUs (a trial with
    several runs them under torchrun), an array throttled to `array_parallelism` jobs at a time."""
    import submitit

    from glt.errors import GLTError

    try:
        ex = submitit.AutoExecutor(folder=str(folder), cluster=opts.cluster)
    except RuntimeError as e:  # no sbatch / srun here: not a Slurm machine
        raise GLTError(f"--launcher slurm: {str(e).splitlines()[0]}") from None
    params = {"name": name, "timeout_min": int(opts.time_min), "nodes": 1, "tasks_per_node": 1,
              "slurm_array_parallelism": int(opts.array_parallelism)}
    if opts.partition:
        params["slurm_partition"] = opts.partition
    if opts.gpus_per_job:
        params["gpus_per_node"] = int(opts.gpus_per_job)
    if opts.cpus_per_job:
        params["cpus_per_task"] = int(opts.cpus_per_job)
    if opts.mem_gb:
        params["mem_gb"] = float(opts.mem_gb)
    extra = {}
    for item in opts.slurm_extra:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise GLTError(f"--slurm-option '{item}' is not of the form KEY=VALUE (an sbatch option without --)")
        extra[key.replace("-", "_")] = value
    if extra:
        params["slurm_additional_parameters"] = extra
    ex.update_parameters(**params)
    return ex


@LAUNCHERS.register("slurm")
def launch_slurm(trials: list[Path], opts: LaunchOptions) -> None:
    if not trials:
        return
    sweep = trials[0].resolve().parents[3]
    ex = slurm_executor(sweep / SLURM, opts)
    nproc = max(1, opts.gpus_per_job)
    from glt.sweeps.slurm_job import TrialJob

    with ex.batch():  # one job array
        jobs = [ex.submit(TrialJob(), str(path), nproc) for path in trials]
    # job ids in a file of their own: the jobs may already be writing their trial records
    ids = read_json(sweep / JOBS_FILE, "job list") if (sweep / JOBS_FILE).is_file() else {}
    ids.update({str(p.resolve().relative_to(sweep)): str(j.job_id) for p, j in zip(trials, jobs)})
    write_json(sweep / JOBS_FILE, ids)
    print(f"submitted {len(jobs)} trial(s) as job array {jobs[0].job_id.split('_')[0]}; "
          f"`glt sweep --status {sweep}` shows where they stand")
    if opts.wait:
        for path, job in zip(trials, jobs):
            try:
                job.result()
            except Exception as e:  # the job died (time limit, node failure): the trial is recorded as failed
                from glt.errors import first_line

                rec = load_trial(path)
                if rec.status in ("queued", "running"):
                    save_trial(path, rec, status="failed", error=f"job {job.job_id}: {first_line(e)}")
