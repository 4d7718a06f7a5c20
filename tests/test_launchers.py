"""Launchers: local --jobs N and torchrun (the processes they start), Slurm through submitit (its local executor
for a real job; the Slurm executor's parameters and sbatch text with stand-in sbatch / srun, no cluster)."""

from __future__ import annotations

import json
import os
import stat
import threading
import time

import pytest

from glt.sweeps.launchers import LAUNCHERS, LaunchOptions, slurm_executor
from glt.sweeps.plan import new_record
from glt.sweeps.records import load_trial, save_trial, trial_file

FAST = ["epochs=1", "model.backbone=small_cnn", "data.batch_size=16", "data.num_workers=0", "progress=false", "threads=1"]


def queued(out, benchmark, names, method="ce"):
    """Trial records ready to start (the draw: a learning rate of its own each)."""
    settings = {"benchmark": str(benchmark), "seeds": [0], "overrides": FAST}
    paths = []
    for i, name in enumerate(names):
        path = trial_file(out, method, name)
        save_trial(path, new_record(out, method, name, settings, {"optim.lr": 0.01 * (i + 1)}, "random"))
        paths.append(path)
    return paths


def fake_processes(monkeypatch, exit_codes):
    """subprocess.call of the launchers replaced: records each command and when it ran, marks its trial done
    (or exits with the code given for it)."""
    import glt.sweeps.launchers as launchers

    calls, lock = [], threading.Lock()

    def call(cmd):
        start = time.monotonic()
        time.sleep(0.3)
        path = cmd[-1]
        rc = exit_codes.get(load_trial(path).trial, 0)
        if rc == 0:
            save_trial(path, load_trial(path), status="done")
        with lock:
            calls.append((cmd, start, time.monotonic()))
        return rc

    monkeypatch.setattr(launchers.subprocess, "call", call)
    return calls


def test_registry_names_the_launchers():
    assert LAUNCHERS.names() == ["local", "slurm", "torchrun"]


def test_local_jobs_run_at_the_same_time_and_a_dead_process_is_a_failure(tmp_path, monkeypatch):
    paths = queued(tmp_path, "b", ["t000", "t001", "t002", "t003"])
    calls = fake_processes(monkeypatch, {"t002": -9})
    LAUNCHERS.get("local")(paths, LaunchOptions(jobs=2))
    assert sorted(c[0][-1] for c in calls) == sorted(map(str, paths))
    assert all(c[0][1:3] == ["-m", "glt.sweeps.worker"] for c in calls)
    # two at a time: some pair of calls overlapped, never three
    spans = [(a, b) for _, a, b in calls]
    overlap = lambda x, y: x[0] < y[1] and y[0] < x[1]  # noqa: E731
    assert any(overlap(x, y) for i, x in enumerate(spans) for y in spans[i + 1:])
    assert not any(overlap(x, y) and overlap(y, z) and overlap(x, z)
                   for i, x in enumerate(spans) for j, y in enumerate(spans[i + 1:], i + 1) for z in spans[j + 1:])
    status = {load_trial(p).trial: (load_trial(p).status, load_trial(p).error) for p in paths}
    assert status["t002"] == ("failed", "the trial's process exited with status -9")
    assert [status[t][0] for t in ("t000", "t001", "t003")] == ["done"] * 3


def test_torchrun_starts_each_trial_on_n_processes(tmp_path, monkeypatch):
    paths = queued(tmp_path, "b", ["t000", "t001"])
    calls = fake_processes(monkeypatch, {})
    LAUNCHERS.get("torchrun")(paths, LaunchOptions(nproc_per_node=4))
    assert sorted(c[0] for c in calls) == [
        ["torchrun", "--standalone", "--nproc-per-node=4", "-m", "glt.sweeps.worker", str(p)] for p in paths]


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """`srun` and `sbatch` stand-ins on PATH: sbatch keeps the script it is given and answers a job id."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_ / "sbatch").write_text(f"#!/bin/sh\ncp \"$1\" {tmp_path}/submitted.sh\necho 'Submitted batch job 4242'\n")
    for f in bin_.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def test_slurm_executor_parameters_and_sbatch_text(fake_slurm):
    opts = LaunchOptions(partition="gpu", time_min=90, gpus_per_job=4, cpus_per_job=16, mem_gb=64,
                         array_parallelism=8, slurm_extra=("account=proj", "qos=high"), cluster="slurm")
    ex = slurm_executor(fake_slurm / "slurm", opts)
    p = ex._executor.parameters
    assert (p["partition"], p["time"], p["gpus_per_node"], p["cpus_per_task"], p["array_parallelism"]) == \
        ("gpu", 90, 4, 16, 8)
    assert p["additional_parameters"] == {"account": "proj", "qos": "high"}
    text = ex._executor._make_submission_file_text("python -u -m submitit.core._submit X", "uid")
    for line in ("--partition=gpu", "--time=90", "--gpus-per-node=4", "--cpus-per-task=16", "--mem=64GB",
                 "--account=proj", "--qos=high", "--nodes=1", "--ntasks-per-node=1"):
        assert f"#SBATCH {line}\n" in text, line


def test_slurm_launcher_submits_one_throttled_array(fake_slurm, capsys):
    paths = queued(fake_slurm / "sw", "b", ["t000", "t001", "t002"])
    LAUNCHERS.get("slurm")(paths, LaunchOptions(partition="gpu", array_parallelism=2, cluster="slurm"))
    script = (fake_slurm / "submitted.sh").read_text()
    assert "#SBATCH --array=0-2%2\n" in script and "#SBATCH --partition=gpu\n" in script
    jobs = json.loads((fake_slurm / "sw" / "slurm" / "jobs.json").read_text())
    assert jobs == {f"trials/ce/t00{i}/trial.json": f"4242_{i}" for i in range(3)}
    assert "submitted 3 trial(s) as job array 4242" in capsys.readouterr().out


def test_slurm_path_with_submitits_local_executor(tiny_benchmark, tmp_path, capsys):
    from glt.cli.main import main
    from glt.sweeps.status import status_text

    (path,) = queued(tmp_path / "sw", tiny_benchmark, ["t000"])
    LAUNCHERS.get("slurm")([path], LaunchOptions(cluster="local", wait=True))
    rec = load_trial(path)
    assert (rec.status, rec.seeds_done) == ("done", [0])
    run = tmp_path / "sw" / "trials/ce/t000/seed0"
    from glt.experiment import collect_results

    ((folder, result),) = collect_results([run])
    assert (folder, result["method"], result["seed"]) == (run, "ce", 0)
    assert "lr: 0.01\n" in (run / "glt" / "config.yaml").read_text()
    text = status_text(tmp_path / "sw")
    assert text.splitlines()[0] == "1 trial(s): 0 queued, 0 running, 1 done, 0 failed, 0 pruned"
    assert "ce/t000  done  seeds 1/1" in text and "job " in text
    with pytest.raises(SystemExit) as e:
        main(["sweep", "--status", str(tmp_path / "sw")])
    assert e.value.code == 0 and "ce/t000  done" in capsys.readouterr().out


def test_building_the_parser_imports_no_launcher_library():
    import subprocess
    import sys

    code = ("import sys; from glt.cli.main import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'optuna', 'submitit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("ended", [True, False])
def test_a_trial_of_an_ended_slurm_job_is_started_again(tiny_benchmark, tmp_path, monkeypatch, ended, capsys):
    """A record left "running" by a job on another node: started again once Slurm says the job ended."""
    import glt.sweeps.slurm_job
    from glt.sweeps.runner import SweepSettings, prepare

    out = tmp_path / "sw"
    s = SweepSettings(str(tiny_benchmark), ["ce"], [0], out, list(FAST), search="random", trials=1)
    (path,) = prepare(s)
    rec = load_trial(path)
    save_trial(path, rec, status="running")
    rec = json.loads(path.read_text())
    path.write_text(json.dumps({**rec, "host": "node-17", "pid": 1}))
    (out / "slurm").mkdir()
    (out / "slurm" / "jobs.json").write_text(json.dumps({"trials/ce/t000/trial.json": "77_0"}))
    asked = []
    monkeypatch.setattr(glt.sweeps.slurm_job, "job_ended", lambda folder, job: asked.append(job) or ended)
    todo = prepare(s)
    assert asked == ["77_0"]
    assert todo == ([path] if ended else []) and load_trial(path).status == ("queued" if ended else "running")
