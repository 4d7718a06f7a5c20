"""The callable a Slurm job runs (submitit pickles it by reference). Checkpointable: when Slurm stops the job
at its time limit or preempts it, submitit requeues it with the same arguments, and the trial's runs resume
from their last checkpoint (`glt run --resume`)."""

from __future__ import annotations

import submitit

from glt.sweeps.worker import run_trial_job

# Slurm states after which a job trains no more (sacct); a trial record still "running" then is stale
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL",
         "DEADLINE")


class TrialJob(submitit.helpers.Checkpointable):
    def __call__(self, trial_json: str, nproc: int = 1) -> str:
        return run_trial_job(trial_json, nproc)


def job_ended(folder, job_id: str) -> bool:
    """Whether Slurm says the job has ended (False when it cannot tell: no sacct, an unknown job)."""
    try:
        state = submitit.SlurmJob(folder=folder, job_id=job_id).state
    except Exception:  # no Slurm here, sacct failed: not known to have ended
        return False
    return str(state).split()[0].upper() in ENDED
