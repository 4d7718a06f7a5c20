"""Every user error ends as one line on stderr with exit status 2, no traceback, and nothing written
or deleted: the table below tries bad inputs of every command (most fail in validation, before any
training); the tests after it cover the data-loss cases (--overwrite, --resume, the run-folder lock,
failed runs)."""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import fast_overrides, make_tiny_benchmark
from glt.cli.main import main

FAST = " ".join(fast_overrides(1))


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return e.value.code, captured.err.strip()


def assert_one_line_error(code, err, *fragments):
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("glt: error:"), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, err


def snapshot(root: Path) -> dict:
    """Every file and link under `root` with its size and modification time (folders are not listed: a
    run's lock file comes and goes in its folder)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture()
def bench_copy(tiny_benchmark, tmp_path):
    dst = tmp_path / "bench"
    shutil.copytree(tiny_benchmark, dst)
    return dst


# ---- the shared inputs of the table: a benchmark, finished runs, original annotation files -----------------


@pytest.fixture(scope="module")
def ws(tiny_benchmark, tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    p = {"ws": root, "b": root / "bench", "b6": root / "bench6", "run": root / "run", "ifl": root / "ifl",
         "prun": root / "prun", "orig": root / "orig", "F": FAST}
    shutil.copytree(tiny_benchmark, p["b"])
    make_tiny_benchmark(p["b6"], num_classes=6, seed=1)
    for name, method in (("run", "ce"), ("ifl", "ifl")):
        with pytest.raises(SystemExit) as e:
            main(["train", "--benchmark", str(p["b"]), "--method", method, "--out", str(p[name]), *fast_overrides(1)])
        assert e.value.code == 0
    with pytest.raises(SystemExit) as e:
        main(["run", "--benchmark", str(p["b"]), "--method", "ce", "--out", str(p["prun"]), *fast_overrides(1)])
    assert e.value.code == 0
    with pytest.raises(SystemExit) as e:
        main(["export", "--benchmark", str(p["b"]), "--out", str(p["orig"])])
    assert e.value.code == 0
    p["lt"] = p["orig"] / "tiny_inter_lt.json"
    p["bl"] = p["orig"] / "tiny_inter_bl.json"
    p["preds"] = p["run"] / "predictions" / "glt__test_gbl.csv"
    assert p["lt"].is_file() and p["bl"].is_file() and p["preds"].is_file()
    p["snapshot"] = snapshot(root)
    return p


# ---- per-case inputs (written into the case's own folder before its snapshot is taken) ---------------------


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _unfinished(p, name="run"):
    """A copy of a finished run made unfinished (eval.json gone): `train --resume` continues it."""
    x = _copy(p[name], p["t"] / "x")
    (x / "eval.json").unlink()
    p["x"] = x
    return x


def best_zero(p, mp):
    x = _copy(p["run"], p["t"] / "x")
    (x / "checkpoints" / "best.pt").write_bytes(b"")
    p["x"] = x


def best_truncated(p, mp):
    x = _copy(p["run"], p["t"] / "x")
    best = x / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:200])
    p["x"] = x


def best_garbage(p, mp):
    x = _copy(p["run"], p["t"] / "x")
    (x / "checkpoints" / "best.pt").write_bytes(b"this is not a checkpoint\n" * 10)
    p["x"] = x


class _Evil:
    """Unpickling this creates a file: a checkpoint holding it must be refused, never unpickled."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_file(path: Path, marker: Path) -> None:
    import torch

    evil = _Evil()
    evil.marker = str(marker)
    torch.save({"model": {"w": evil}}, path)


def best_unsafe(p, mp):
    x = _copy(p["run"], p["t"] / "x")
    _evil_file(x / "checkpoints" / "best.pt", p["t"] / "PWNED")
    p["x"] = x


def best_tensor(p, mp):
    import torch

    x = _copy(p["run"], p["t"] / "x")
    torch.save(torch.zeros(3), x / "checkpoints" / "best.pt")
    p["x"] = x


def best_missing(p, mp):
    x = _copy(p["run"], p["t"] / "x")
    (x / "checkpoints" / "best.pt").unlink()
    p["x"] = x


def best_of_ifl(p, mp):
    x = _copy(p["run"], p["t"] / "x")
    shutil.copy(p["ifl"] / "checkpoints" / "best.pt", x / "checkpoints" / "best.pt")
    p["x"] = x


def config_malformed(p, mp):
    x = _copy(p["run"], p["t"] / "x")
    (x / "config.yaml").write_text("optim: [1, 2\n")
    p["x"] = x


def config_bad_epochs(p, mp):
    x = _copy(p["run"], p["t"] / "x")
    text = (x / "config.yaml").read_text()
    assert "\nepochs: 1\n" in text
    (x / "config.yaml").write_text(text.replace("\nepochs: 1\n", "\nepochs: -1\n"))
    p["x"] = x


def config_moved_benchmark(p, mp):
    x = _copy(p["run"], p["t"] / "x")
    text = (x / "config.yaml").read_text()
    assert str(p["b"]) in text
    (x / "config.yaml").write_text(text.replace(str(p["b"]), str(p["t"] / "gone")))
    p["x"] = x


def prun_cbl_zero(p, mp):
    x = _copy(p["prun"], p["t"] / "x")
    (x / "cbl" / "checkpoints" / "best.pt").write_bytes(b"")
    p["x"] = x


def last_zero(p, mp):
    (_unfinished(p) / "checkpoints" / "last.pt").write_bytes(b"")


def last_truncated(p, mp):
    last = _unfinished(p) / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:300])


def last_is_best(p, mp):
    x = _unfinished(p)
    shutil.copy(x / "checkpoints" / "best.pt", x / "checkpoints" / "last.pt")


def last_of_ifl(p, mp):
    x = _unfinished(p)
    shutil.copy(p["ifl"] / "checkpoints" / "last.pt", x / "checkpoints" / "last.pt")


def weights_zero(p, mp):
    (p["t"] / "w.pt").write_bytes(b"")


def weights_garbage(p, mp):
    (p["t"] / "w.pt").write_bytes(b"\x80\x04garbage")


def weights_unsafe(p, mp):
    _evil_file(p["t"] / "w.pt", p["t"] / "PWNED")


def weights_wider(p, mp):
    """A state dict of the same backbone at another width: same keys, other shapes."""
    import torch

    from glt.models import create_backbone

    torch.save(create_backbone("small_cnn", width=24).state_dict(), p["t"] / "w.pt")


def weights_other_keys(p, mp):
    import torch

    torch.save({"conv9.weight": torch.zeros(2, 2)}, p["t"] / "w.pt")


def stage1_zero(p, mp):
    (p["t"] / "stage1" / "checkpoints").mkdir(parents=True)
    shutil.copy(p["run"] / "config.yaml", p["t"] / "stage1" / "config.yaml")
    (p["t"] / "stage1" / "checkpoints" / "best.pt").write_bytes(b"")


def yaml_malformed(p, mp):
    (p["t"] / "c.yaml").write_text("optim: [1, 2\n")


def yaml_list(p, mp):
    (p["t"] / "c.yaml").write_text("- 1\n- 2\n")


def yaml_unknown_key(p, mp):
    (p["t"] / "c.yaml").write_text("optim:\n  lrr: 0.1\n")


def yaml_nan_lr(p, mp):
    (p["t"] / "c.yaml").write_text("optim:\n  lr: .nan\n")


def results_malformed(p, mp):
    (p["t"] / "rr").mkdir()
    (p["t"] / "rr" / "results.json").write_text("{not json")


def lt_malformed(p, mp):
    (p["t"] / "lt.json").write_text("{not json")


def pickle_file(p, mp):
    import pickle

    (p["t"] / "a.jbl").write_bytes(pickle.dumps({"x": 1}))


def npz_garbage(p, mp):
    (p["t"] / "a.npz").write_bytes(b"garbage")


def empty_input(p, mp):
    (p["t"] / "a.jbl").write_bytes(b"")


def no_space(p, mp):
    """Every glt.io write (atomic files and folders) fails as on a full disk."""
    import glt.io

    def full(*args, dir=None, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dir))

    mp.setattr(glt.io.tempfile, "mkstemp", full)
    mp.setattr(glt.io.tempfile, "mkdtemp", full)


TR = "train --benchmark {b} --out {t}/r {F}"
RUN = "run --benchmark {b} --method ce --out {t}/r {F}"
SW = "sweep --benchmark {b} --methods ce --seeds 0 --out {t}/s {F}"
DEMO = "demo --out {t}/d --methods ce"
SCORE = "score --benchmark {b} --split glt/test_gbl --predictions {preds}"
FOLDER = "build folder --root {t} --out {t}/o --random-init"

# (id, argv, fragment the message must hold, setup)
CASES = [
    # the command line itself
    ("top-no-command", "", "COMMAND", None),
    ("top-unknown-command", "trian", "trian", None),
    ("top-unknown-option", "--bogus methods", "--bogus", None),
    ("train-unknown-option", TR + " --bogus", "--bogus", None),
    ("train-resume-and-overwrite", TR + " --resume --overwrite", "--overwrite", None),
    ("train-missing-out", "train --benchmark {b}", "--out", None),
    ("train-seed-not-int", TR + " --seed x", "--seed", None),
    ("train-track-choice", TR + " --track foo", "--track", None),
    # train: the config
    ("train-no-benchmark", "train --out {t}/r {F}", "benchmark", None),
    ("train-missing-benchmark", "train --benchmark {t}/nope --out {t}/r {F}", "nope", None),
    ("train-benchmark-is-file", "train --benchmark {file} --out {t}/r {F}", "afile.txt", None),
    ("train-unknown-method", TR + " --method blsoftmx", "blsoftmax", None),
    ("train-unknown-wrapper", TR + " --method ifx+ce", "ifl", None),
    ("train-unknown-base", TR + " --method ifl+cee", "cee", None),
    ("train-unknown-key", TR + " optim.lrr=0.1", "optim.lr", None),
    ("train-unknown-top-key", TR + " epoch=3", "epochs", None),
    ("train-override-without-equals", TR + " epochs", "epochs", None),
    ("train-override-empty-key", TR + " =3", "=3", None),
    ("train-epochs-not-int", TR + " epochs=many", "epochs", None),
    ("train-epochs-zero", TR + " epochs=0", "epochs", None),
    ("train-epochs-negative", TR + " epochs=-1", "epochs", None),
    ("train-lr-nan", TR + " optim.lr=nan", "optim.lr", None),
    ("train-lr-inf", TR + " optim.lr=inf", "optim.lr", None),
    ("train-lr-negative", TR + " optim.lr=-0.1", "optim.lr", None),
    ("train-lr-zero", TR + " optim.lr=0", "optim.lr", None),
    ("train-momentum-negative", TR + " optim.momentum=-0.5", "optim.momentum", None),
    ("train-momentum-above-1", TR + " optim.momentum=1.5", "optim.momentum", None),
    ("train-weight-decay-negative", TR + " optim.weight_decay=-1", "optim.weight_decay", None),
    ("train-weight-decay-nan", TR + " optim.weight_decay=nan", "optim.weight_decay", None),
    ("train-gamma-zero", TR + " optim.gamma=0", "optim.gamma", None),
    ("train-gamma-nan", TR + " optim.gamma=nan", "optim.gamma", None),
    ("train-step-size-zero", TR + " optim.step_size=0", "optim.step_size", None),
    ("train-warmup-negative", TR + " optim.warmup_epochs=-1", "optim.warmup_epochs", None),
    ("train-milestone-negative", TR + " optim.milestones=[-1]", "optim.milestones", None),
    ("train-milestones-not-list", TR + " optim.milestones=abc", "optim.milestones", None),
    ("train-schedule-unknown", TR + " optim.schedule=linearr", "optim.schedule", None),
    ("train-checkpoint-every-negative", TR + " checkpoint_every=-5", "checkpoint_every", None),
    ("train-select-every-zero", TR + " select_every=0", "select_every", None),
    ("train-prior-order-unknown", TR + " data.prior_order=alphabetical", "data.prior_order", None),
    ("train-schedule-granularity-unknown", TR + " optim.schedule_granularity=batch", "schedule_granularity", None),
    ("train-backbone-mode-unknown", TR + " --method crt method_args.backbone_mode=frozen", "backbone_mode", None),
    ("train-batch-size-zero", TR + " data.batch_size=0", "data.batch_size", None),
    ("train-batch-size-negative", TR + " data.batch_size=-4", "data.batch_size", None),
    ("train-eval-batch-size-zero", TR + " data.eval_batch_size=0", "data.eval_batch_size", None),
    ("train-num-workers-negative", TR + " data.num_workers=-1", "data.num_workers", None),
    ("train-image-size-negative", TR + " data.image_size=-3", "data.image_size", None),
    ("train-image-size-zero", TR + " data.image_size=0", "data.image_size", None),
    ("train-crop-scale-zero", TR + " data.crop_scale_min=0", "data.crop_scale_min", None),
    ("train-crop-scale-above-1", TR + " data.crop_scale_min=1.5", "data.crop_scale_min", None),
    ("train-crop-scale-nan", TR + " data.crop_scale_min=nan", "data.crop_scale_min", None),
    ("train-track-unknown", TR + " data.track=foo", "data.track", None),
    ("train-augment-unknown", TR + " data.augment=bogus", "data.augment", None),
    ("train-image-cache-unknown", TR + " data.image_cache=s999_q1", "s999_q1", None),
    ("train-threads-zero", TR + " threads=0", "threads", None),
    ("train-seed-negative", TR + " seed=-1", "seed", None),
    ("train-seed-option-negative", TR + " --seed -1", "seed", None),
    ("train-device-unknown", TR + " device=tpu", "tpu", None),
    ("train-amp-unknown", TR + " amp=fp8", "amp", None),
    ("train-method-arg-nan", TR + " --method blsoftmax method_args.prior_power=nan", "method_args.prior_power", None),
    ("train-method-arg-unknown", TR + " --method blsoftmax method_args.tau=1", "method_args", None),
    ("train-method-arg-type", TR + " --method focal method_args.gamma=abc", "method_args.gamma", None),
    ("train-wrapper-arg-zero-envs", TR + " --method ifl wrapper_args.num_envs=0", "wrapper_args.num_envs", None),
    ("train-wrapper-arg-inf", TR + " --method ifl wrapper_args.sample_scale=inf", "wrapper_args.sample_scale", None),
    ("train-method-arg-per-class-zero", TR + " --method crt method_args.per_class=0", "method_args.per_class", None),
    ("train-method-arg-epochs-negative", TR + " --method crt method_args.classifier_epochs=-1",
     "method_args.classifier_epochs", None),
    ("train-init-from-missing", TR + " --method crt method_args.init_from={t}/nope", "init_from", None),
    ("train-init-from-empty-checkpoint", TR + " --method crt method_args.init_from={t}/stage1", "best.pt", stage1_zero),
    ("train-init-from-other-classes", "train --benchmark {b6} --out {t}/r {F} --method lws method_args.init_from={run}",
     "best.pt", None),
    ("train-backbone-unknown", TR + " model.backbone=small_cnnn", "small_cnn", None),
    ("train-backbone-option-unknown", TR + " model.options.bogus=1", "bogus", None),
    ("train-weights-file-missing", TR + " model.weights_file={t}/nope.pt", "nope.pt", None),
    ("train-weights-file-empty", TR + " model.weights_file={t}/w.pt", "w.pt", weights_zero),
    ("train-weights-file-garbage", TR + " model.weights_file={t}/w.pt", "w.pt", weights_garbage),
    ("train-weights-file-unsafe", TR + " model.weights_file={t}/w.pt", "w.pt", weights_unsafe),
    ("train-weights-file-other-shapes", TR + " model.weights_file={t}/w.pt", "w.pt", weights_wider),
    ("train-weights-file-other-keys", TR + " model.weights_file={t}/w.pt", "w.pt", weights_other_keys),
    ("train-yaml-missing", TR + " --config {t}/nope.yaml", "nope.yaml", None),
    ("train-yaml-malformed", TR + " --config {t}/c.yaml", "c.yaml", yaml_malformed),
    ("train-yaml-not-mapping", TR + " --config {t}/c.yaml", "c.yaml", yaml_list),
    ("train-yaml-unknown-key", TR + " --config {t}/c.yaml", "optim.lr", yaml_unknown_key),
    ("train-yaml-nan-lr", TR + " --config {t}/c.yaml", "optim.lr", yaml_nan_lr),
    ("train-yaml-is-folder", TR + " --config {t}", "config file", None),
    ("train-preset-unknown", TR + " --preset foo", "--preset", None),
    # train: the output folder
    ("train-out-is-file", "train --benchmark {b} --out {file} {F}", "afile.txt", None),
    ("train-out-parent-is-file", "train --benchmark {b} --out {file}/r {F}", "afile.txt", None),
    ("train-out-in-proc", "train --benchmark {b} --out /proc/glt-nope/r {F}", "/proc/glt-nope", None),
    ("train-out-in-sys", "train --benchmark {b} --out /sys/glt-nope {F}", "/sys/glt-nope", None),
    ("train-out-user-folder", "train --benchmark {b} --out {user} {F}", "notes.txt", None),
    ("train-out-user-folder-overwrite", "train --benchmark {b} --out {user} {F} --overwrite", "notes.txt", None),
    ("train-out-user-folder-resume", "train --benchmark {b} --out {user} {F} --resume", "notes.txt", None),
    ("train-out-different-run", "train --benchmark {b} --out {run} {F} seed=7", "different run", None),
    ("train-out-different-run-resume", "train --benchmark {b} --out {run} {F} seed=7 --resume", "different run", None),
    ("train-resume-empty-last", "train --benchmark {b} --out {x} {F} --resume", "last.pt", last_zero),
    ("train-resume-truncated-last", "train --benchmark {b} --out {x} {F} --resume", "last.pt", last_truncated),
    ("train-resume-best-as-last", "train --benchmark {b} --out {x} {F} --resume", "last.pt", last_is_best),
    ("train-resume-last-of-other-method", "train --benchmark {b} --out {x} {F} --resume", "ifl", last_of_ifl),
    ("train-disk-full", TR, "No space left", no_space),
    # run
    ("run-missing-method", "run --benchmark {b} --out {t}/r {F}", "--method", None),
    ("run-unknown-method", "run --benchmark {b} --method cee --out {t}/r {F}", "cee", None),
    ("run-missing-benchmark", "run --benchmark {t}/nope --method ce --out {t}/r {F}", "nope", None),
    ("run-epochs-zero", RUN + " epochs=0", "epochs", None),
    ("run-lr-nan", RUN + " optim.lr=nan", "optim.lr", None),
    ("run-seed-negative", RUN + " --seed -3", "seed", None),
    ("run-resume-and-overwrite", RUN + " --resume --overwrite", "--overwrite", None),
    ("run-out-is-file", "run --benchmark {b} --method ce --out {file} {F}", "afile.txt", None),
    ("run-out-in-proc", "run --benchmark {b} --method ce --out /proc/glt-nope {F}", "/proc/glt-nope", None),
    ("run-out-user-folder", "run --benchmark {b} --method ce --out {user} {F}", "notes.txt", None),
    ("run-out-user-folder-overwrite", "run --benchmark {b} --method ce --out {user} {F} --overwrite", "notes.txt", None),
    ("run-disk-full", RUN, "No space left", no_space),
    # sweep
    ("sweep-methods-empty", "sweep --benchmark {b} --methods , --out {t}/s", "--methods", None),
    ("sweep-unknown-method", "sweep --benchmark {b} --methods ce,cee --out {t}/s {F}", "cee", None),
    ("sweep-seeds-not-int", SW + " --seeds a,b", "--seeds", None),
    ("sweep-seeds-empty", SW + " --seeds ,", "--seeds", None),
    ("sweep-seed-negative", SW + " --seeds=-1", "seed", None),
    ("sweep-nproc-zero-dry-run", SW + " --dry-run --nproc-per-node 0", "--nproc-per-node", None),
    ("sweep-nproc-zero", SW + " --nproc-per-node 0", "--nproc-per-node", None),
    ("sweep-epochs-zero", SW + " epochs=0", "epochs", None),
    ("sweep-dry-run-epochs-zero", SW + " --dry-run epochs=0", "epochs", None),
    ("sweep-dry-run-unknown-key", SW + " --dry-run optim.lrr=1", "optim.lr", None),
    ("sweep-missing-benchmark", "sweep --benchmark {t}/nope --methods ce --out {t}/s", "nope", None),
    ("sweep-out-is-file", "sweep --benchmark {b} --methods ce --seeds 0 --out {file} {F}", "afile.txt", None),
    ("sweep-out-user-folder", "sweep --benchmark {b} --methods ce --seeds 0 --out {user} {F}", "notes.txt", None),
    # demo: every argument is checked before the benchmark is built or anything is deleted
    ("demo-unknown-method", "demo --out {t}/d --methods bogus", "bogus", None),
    ("demo-unknown-method-overwrite", "demo --out {user} --methods bogus --overwrite", "bogus", None),
    ("demo-methods-empty", "demo --out {t}/d --methods ,", "--methods", None),
    ("demo-seeds-not-int", DEMO + " --seeds x", "--seeds", None),
    ("demo-seed-negative", DEMO + " --seeds=-1", "seed", None),
    ("demo-epochs-zero", DEMO + " epochs=0", "epochs", None),
    ("demo-lr-nan", DEMO + " optim.lr=nan", "optim.lr", None),
    ("demo-unknown-key", DEMO + " optim.lrr=1", "optim.lr", None),
    ("demo-method-arg-nan", "demo --out {t}/d --methods blsoftmax method_args.prior_power=nan",
     "method_args.prior_power", None),
    ("demo-out-is-file", "demo --out {file} --methods ce", "afile.txt", None),
    ("demo-out-in-proc", "demo --out /proc/glt-nope --methods ce", "/proc/glt-nope", None),
    ("demo-out-user-folder", "demo --out {user} --methods ce", "notes.txt", None),
    ("demo-out-user-folder-overwrite", "demo --out {user} --methods ce --overwrite", "notes.txt", None),
    ("demo-disk-full", DEMO, "No space left", no_space),
    # eval
    ("eval-missing-folder", "eval {t}/nope", "nope", None),
    ("eval-not-a-run", "eval {user}", "config.yaml", None),
    ("eval-a-file", "eval {file}", "afile.txt", None),
    ("eval-config-malformed", "eval {x}", "config.yaml", config_malformed),
    ("eval-config-epochs-negative", "eval {x}", "epochs", config_bad_epochs),
    ("eval-config-benchmark-moved", "eval {x}", "gone", config_moved_benchmark),
    ("eval-best-empty", "eval {x}", "best.pt", best_zero),
    ("eval-best-truncated", "eval {x}", "best.pt", best_truncated),
    ("eval-best-garbage", "eval {x}", "best.pt", best_garbage),
    ("eval-best-unsafe", "eval {x}", "best.pt", best_unsafe),
    ("eval-best-not-a-dict", "eval {x}", "best.pt", best_tensor),
    ("eval-best-missing", "eval {x}", "best.pt", best_missing),
    ("eval-best-of-other-method", "eval {x}", "ifl", best_of_ifl),
    ("eval-other-class-count", "eval {run} --benchmark {b6}", "classes", None),
    ("eval-benchmark-missing", "eval {run} --benchmark {t}/nope", "nope", None),
    ("eval-protocol-folder-broken-track", "eval {x}", "best.pt", prun_cbl_zero),
    # score (more in the scoring tests)
    ("score-predictions-missing", "score --benchmark {b} --split glt/test_gbl --predictions {t}/absent.csv",
     "absent.csv", None),
    ("score-split-unknown", "score --benchmark {b} --split glt/test_gbll --predictions {preds}", "test_gbll", None),
    ("score-benchmark-missing", "score --benchmark {t}/nope --split glt/test_gbl --predictions {preds}", "nope", None),
    ("score-out-is-folder", SCORE + " --out {t}", "{t}", None),
    ("score-out-parent-is-file", SCORE + " --out {file}/m.json", "afile.txt", None),
    ("score-disk-full", SCORE + " --out {t}/m.json", "No space left", no_space),
    # report
    ("report-missing-path", "report {t}/nope", "nope", None),
    ("report-no-results", "report {user}", "results.json", None),
    ("report-results-malformed", "report {t}/rr", "results.json", results_malformed),
    ("report-out-is-file", "report {prun} --out {file}", "afile.txt", None),
    ("report-out-in-proc", "report {prun} --out /proc/glt-nope", "/proc/glt-nope", None),
    ("report-tensorboard-missing-path", "report {t}/nope --tensorboard", "nope", None),
    ("report-disk-full", "report {prun} --out {t}/rep", "No space left", no_space),
    # features, backbones (the foundation-model track)
    ("features-unknown-backbone", "features --benchmark {b} --backbone resnet5O --out {t}/s", "resnet5O", None),
    ("features-weights-file-missing", "features --benchmark {b} --backbone small_cnn --weights-file {t}/nope.pt "
     "--out {t}/s", "nope.pt", None),
    ("features-out-is-file", "features --benchmark {b} --backbone small_cnn --out {file}", "afile.txt", None),
    ("features-out-user-folder", "features --benchmark {b} --backbone small_cnn --out {user}", "notes.txt", None),
    ("features-out-user-folder-overwrite", "features --benchmark {b} --backbone small_cnn --out {user} --overwrite",
     "notes.txt", None),
    ("features-unknown-split", "features --benchmark {b} --backbone small_cnn --out {t}/s --splits glt/trian",
     "glt/trian", None),
    ("features-batch-size-zero", "features --benchmark {b} --backbone small_cnn --out {t}/s --batch-size 0",
     "--batch-size", None),
    ("features-amp-unknown", "features --benchmark {b} --backbone small_cnn --out {t}/s --amp fp8", "fp8", None),
    ("features-benchmark-missing", "features --benchmark {t}/nope --backbone small_cnn --out {t}/s", "nope", None),
    ("features-option-not-key-value", "features --benchmark {b} --backbone small_cnn --out {t}/s --option width",
     "KEY=VALUE", None),
    ("backbones-nothing-matches", "backbones 'timm:zzz_nothing*'", "zzz_nothing", None),
    ("train-backbone-flag-unknown", "train --benchmark {b} --out {t}/r --method ce --backbone nonet", "nonet", None),
    ("train-weights-flag-file-missing", "train --benchmark {b} --out {t}/r --method ce --weights {t}/nope.pt",
     "nope.pt", None),
    ("train-features-not-a-store", TR + " --method ce data.features={user}", "store", None),
    ("train-features-method-needs-images", TR + " --method mixup data.features={user}", "mixes input images", None),
    # search, selection, provenance
    ("sweep-trials-zero", SW + " --search random --trials 0", "--trials", None),
    ("sweep-search-unknown", SW + " --search grid", "grid", None),
    ("sweep-launcher-unknown", SW + " --launcher pbs", "pbs", None),
    ("sweep-jobs-zero", SW + " --jobs 0", "--jobs", None),
    ("sweep-status-not-a-sweep", "sweep --status {user}", "trial", None),
    ("report-select-unknown-rule", "report {prun} --select val_acc", "val_acc", None),
    ("config-sources-and-original", "config --benchmark {b} --method ce --sources --original", "--sources", None),
    ("score-scores-not-a-score-file", SCORE.replace("{preds}", "{file}") + " --scores logits", "afile.txt", None),
    # methods
    ("methods-unknown", "methods blsoftmx", "blsoftmax", None),
    ("methods-unknown-wrapper", "methods ifx+ce", "ifl", None),
    ("methods-unknown-base", "methods ifl+cee", "cee", None),
    ("methods-two-names", "methods ce ifl", "ifl", None),
    # build
    ("build-no-kind", "build", "KIND", None),
    ("build-unknown-kind", "build digitz --out {t}/o", "digitz", None),
    ("build-digits-missing-out", "build digits", "--out", None),
    ("build-digits-out-is-file", "build digits --out {file}", "afile.txt", None),
    ("build-digits-out-parent-is-file", "build digits --out {file}/o", "afile.txt", None),
    ("build-digits-out-in-proc", "build digits --out /proc/glt-nope", "/proc/glt-nope", None),
    ("build-digits-out-user-folder", "build digits --out {user}", "not empty", None),
    ("build-digits-out-user-folder-overwrite", "build digits --out {user} --overwrite", "notes.txt", None),
    ("build-digits-seed-negative", "build digits --out {t}/o --seed -1", "seed", None),
    ("build-digits-colours", "build digits --out {t}/o --colours 1", "colours", None),
    ("build-digits-image-size", "build digits --out {t}/o --image-size -3", "image size", None),
    ("build-digits-imbalance-nan", "build digits --out {t}/o --imbalance nan", "imbalance", None),
    ("build-digits-imbalance-not-number", "build digits --out {t}/o --imbalance x", "--imbalance", None),
    ("build-digits-ratio", "build digits --out {t}/o --attribute-ratio a,b", "--attribute-ratio", None),
    ("build-digits-pool-head", "build digits --out {t}/o --pool-head 0", "pool_head", None),
    ("build-digits-disk-full", "build digits --out {t}/o", "No space left", no_space),
    ("build-folder-root-missing", "build folder --root {t}/nope --out {t}/o --random-init", "nope", None),
    ("build-folder-root-is-file", "build folder --root {file} --out {t}/o --random-init", "afile.txt", None),
    ("build-folder-clusters", FOLDER + " --clusters 5", "--clusters", None),
    ("build-folder-n-init", FOLDER + " --n-init 0", "--n-init", None),
    ("build-folder-jobs", FOLDER + " --jobs 0", "--jobs", None),
    ("build-folder-batch-size", FOLDER + " --batch-size 0", "--batch-size", None),
    ("build-folder-workers", FOLDER + " --workers -1", "--workers", None),
    ("build-folder-seed", FOLDER + " --seed -1", "--seed", None),
    ("build-folder-random-init-and-weights", FOLDER + " --weights-file {file}", "--random-init", None),
    ("build-folder-out-is-file", "build folder --root {t} --out {file} --random-init", "afile.txt", None),
    ("build-folder-out-in-proc", "build folder --root {t} --out /proc/glt-nope --random-init", "/proc/glt-nope", None),
    ("build-folder-out-user-folder-overwrite", "build folder --root {t} --out {user} --random-init --overwrite",
     "notes.txt", None),
    ("build-imagenet-root-missing", "build imagenet --root {t}/nope --out {t}/o --random-init", "nope", None),
    ("build-imagenet-out-is-file", "build imagenet --root {t} --out {file} --random-init", "afile.txt", None),
    ("build-imagenet-clusters", "build imagenet --root {t} --out {t}/o --random-init --clusters 4", "--clusters", None),
    ("build-torchvision-unknown-dataset", "build torchvision --dataset bogus --root {t} --out {t}/o --random-init",
     "bogus", None),
    ("build-torchvision-out-is-file", "build torchvision --dataset cifar10 --root {t} --out {file} --random-init",
     "afile.txt", None),
    ("build-coco-root-missing", "build coco --coco-root {t}/nope --attributes {t}/a.npz --out {t}/o", "nope",
     npz_garbage),
    ("build-coco-attributes-missing", "build coco --coco-root {t} --attributes {t}/a.npz --out {t}/o", "a.npz", None),
    ("build-coco-attributes-garbage", "build coco --coco-root {t} --attributes {t}/a.npz --out {t}/o", "a.npz",
     npz_garbage),
    ("build-folder-counts-missing", FOLDER.replace("{t}/nope", "{t}") + " --counts {t}/nope.json", "nope.json", None),
    ("build-folder-features-missing", FOLDER.replace("{t}/nope", "{t}") + " --features {t}/nope.npy", "nope.npy",
     None),
    ("build-folder-weights-file-missing", "build folder --root {t} --out {t}/o --weights-file {t}/nope.pt", "nope.pt",
     None),
    ("build-torchvision-root-missing", "build torchvision --dataset cifar10 --root {t}/nope --out {t}/o --random-init",
     "nope", None),
    ("build-coco-out-is-file", "build coco --coco-root {t} --attributes {t}/a.npz --out {file}", "afile.txt",
     npz_garbage),
    ("build-coco-missing-attributes", "build coco --coco-root {t} --out {t}/o", "--attributes", None),
    # import
    ("import-glt-file-missing", "import --glt-file {t}/nope.json --cbl-file {bl} --out {t}/o", "nope.json", None),
    ("import-cbl-file-missing", "import --glt-file {lt} --cbl-file {t}/nope.json --out {t}/o", "nope.json", None),
    ("import-malformed", "import --glt-file {t}/lt.json --cbl-file {bl} --out {t}/o", "lt.json", lt_malformed),
    ("import-swapped", "import --glt-file {bl} --cbl-file {lt} --out {t}/o", "swapped", None),
    ("import-path-map-without-equals", "import --glt-file {lt} --cbl-file {bl} --out {t}/o --path-map abc",
     "--path-map", None),
    ("import-out-is-file", "import --glt-file {lt} --cbl-file {bl} --out {file}", "afile.txt", None),
    ("import-out-in-proc", "import --glt-file {lt} --cbl-file {bl} --out /proc/glt-nope", "/proc/glt-nope", None),
    ("import-out-user-folder", "import --glt-file {lt} --cbl-file {bl} --out {user}", "not empty", None),
    ("import-out-user-folder-overwrite", "import --glt-file {lt} --cbl-file {bl} --out {user} --overwrite",
     "notes.txt", None),
    ("import-disk-full", "import --glt-file {lt} --cbl-file {bl} --out {t}/o", "No space left", no_space),
    # export
    ("export-benchmark-missing", "export --benchmark {t}/nope --out {t}/e", "nope", None),
    ("export-not-a-benchmark", "export --benchmark {user} --out {t}/e", "manifest", None),
    ("export-out-is-file", "export --benchmark {b} --out {file}", "afile.txt", None),
    ("export-out-parent-is-file", "export --benchmark {b} --out {file}/e", "afile.txt", None),
    ("export-out-in-proc", "export --benchmark {b} --out /proc/glt-nope", "/proc/glt-nope", None),
    ("export-bad-name", "export --benchmark {b} --out {t}/e --name a/b", "name", None),
    ("export-files-exist", "export --benchmark {b} --out {orig}", "already exists", None),
    ("export-disk-full", "export --benchmark {b} --out {t}/e", "No space left", no_space),
    # convert-attributes
    ("convert-missing-file", "convert-attributes {t}/nope.jbl --out {t}/a.npz", "nope.jbl", None),
    ("convert-pickle-not-trusted", "convert-attributes {t}/a.jbl --out {t}/b.npz", "--trust-pickle", pickle_file),
    ("convert-empty-file", "convert-attributes {t}/a.jbl --out {t}/b.npz --trust-pickle", "a.jbl", empty_input),
    ("convert-garbage-npz", "convert-attributes {t}/a.npz --out {t}/b.npz", "a.npz", npz_garbage),
    ("convert-out-parent-is-file", "convert-attributes {t}/a.npz --out {file}/b.npz", "afile.txt", npz_garbage),
    ("convert-out-in-proc", "convert-attributes {t}/a.npz --out /proc/glt-nope/b.npz", "/proc/glt-nope", npz_garbage),
    ("convert-missing-out", "convert-attributes {t}/a.npz", "--out", None),
    # cache
    ("cache-benchmark-missing", "cache --benchmark {t}/nope", "nope", None),
    ("cache-benchmark-is-file", "cache --benchmark {file}", "afile.txt", None),
    ("cache-workers-negative", "cache --benchmark {b} --workers -1", "--workers", None),
    ("cache-workers-zero", "cache --benchmark {b} --workers 0", "--workers", None),
    ("cache-short-side-zero", "cache --benchmark {b} --short-side 0", "short side", None),
    ("cache-short-side-negative", "cache --benchmark {b} --short-side -5", "short side", None),
    ("cache-quality-zero", "cache --benchmark {b} --quality 0", "quality", None),
    ("cache-quality-above-100", "cache --benchmark {b} --quality 101", "quality", None),
    ("cache-workers-not-int", "cache --benchmark {b} --workers x", "--workers", None),
]

_SLOW_WITHOUT_VALIDATION = ("demo-", "build-digits-out-user-folder-overwrite")


@pytest.mark.timeout(120)
def _params():
    for case in CASES:
        i, a, f, s = _values(case)
        yield pytest.param(a, f, s, id=i, marks=getattr(case, "marks", ()))


def _values(case) -> tuple:
    """(id, argv, fragment, setup) of a case: a plain tuple or a pytest.param with marks."""
    return tuple(case.values) if hasattr(case, "marks") else case


def _case_ids():
    return [_values(c)[0] for c in CASES]


@pytest.mark.parametrize("argv, fragment, setup", list(_params()))
def test_bad_input_table(argv, fragment, setup, ws, tmp_path, capsys, monkeypatch):
    t = tmp_path / "case"
    t.mkdir()
    (t / "user").mkdir()
    (t / "user" / "notes.txt").write_text("mine")
    (t / "afile.txt").write_text("a file")
    p = {**ws, "t": t, "user": t / "user", "file": t / "afile.txt"}
    if setup is not None:
        setup(p, monkeypatch)
    before = snapshot(t)
    argv = shlex.split(argv.format(**p))
    code, err = run_cli(capsys, *argv)
    monkeypatch.undo()
    assert_one_line_error(code, err, fragment.format(**p))
    assert snapshot(t) == before, "the failed command wrote or deleted files in its own folder"
    assert snapshot(ws["ws"]) == ws["snapshot"], "the failed command changed the shared inputs"
    assert (t / "user" / "notes.txt").read_text() == "mine"
    assert not (t / "PWNED").exists(), "a checkpoint was unpickled"


def test_table_is_large():
    assert len(CASES) > 100
    assert len(set(_case_ids())) == len(CASES)
    commands = {shlex.split(_values(c)[1])[0] for c in CASES if _values(c)[1]}
    assert commands >= {"build", "import", "export", "convert-attributes", "cache", "train", "run", "eval", "score",
                        "sweep", "report", "demo", "methods", "config", "features", "backbones"}


# ---- the earlier hand-written cases ------------------------------------------------------------------------


def score_args(bench, pred):
    return ("score", "--benchmark", bench, "--split", "glt/test_gbl", "--predictions", pred)


def test_missing_and_malformed_manifest(capsys, tmp_path, bench_copy):
    code, err = run_cli(capsys, "train", "--benchmark", tmp_path / "nope", "--out", tmp_path / "r")
    assert_one_line_error(code, err, "nope")
    (bench_copy / "manifest.json").write_text("{not json")
    code, err = run_cli(capsys, *score_args(bench_copy, tmp_path / "p.csv"))
    assert_one_line_error(code, err, "manifest", "manifest.json")
    (bench_copy / "manifest.json").write_text(json.dumps({"format": "glt-benchmark", "name": "x", "classes": ["a"],
                                                          "tracks": {}, "colour": 1}))
    code, err = run_cli(capsys, *score_args(bench_copy, tmp_path / "p.csv"))
    assert_one_line_error(code, err, "colour")


def test_bad_split_tables(capsys, tmp_path, bench_copy):
    path = bench_copy / "splits" / "glt" / "test_gbl.parquet"
    table = pq.read_table(path)
    pq.write_table(table.append_column("colour", pa.array([1] * table.num_rows)), path)
    code, err = run_cli(capsys, *score_args(bench_copy, tmp_path / "p.csv"))
    assert_one_line_error(code, err, "test_gbl.parquet", "colour")
    labels = table.column("label").to_pylist()
    labels[0] = 99
    pq.write_table(table.set_column(table.column_names.index("label"), "label", pa.array(labels, pa.int32())), path)
    code, err = run_cli(capsys, *score_args(bench_copy, tmp_path / "p.csv"))
    assert_one_line_error(code, err, "test_gbl.parquet", "99")
    path.write_bytes(b"garbage")
    code, err = run_cli(capsys, *score_args(bench_copy, tmp_path / "p.csv"))
    assert_one_line_error(code, err, "test_gbl.parquet")


def test_unopenable_image(capsys, tmp_path, bench_copy):
    first = sorted((bench_copy / "images").iterdir())[0]
    first.write_bytes(b"not a png")
    code, err = run_cli(capsys, "train", "--benchmark", bench_copy, "--out", tmp_path / "r", *fast_overrides(1))
    assert_one_line_error(code, err, first.name)
    assert not (tmp_path / "r").exists()  # a run that failed before its first checkpoint leaves nothing


def test_unknown_method_and_config_key(capsys, tmp_path, tiny_benchmark):
    code, err = run_cli(capsys, "train", "--benchmark", tiny_benchmark, "--method", "blsoftmx", "--out", tmp_path / "r")
    assert_one_line_error(code, err, "blsoftmax")
    code, err = run_cli(capsys, "train", "--benchmark", tiny_benchmark, "--out", tmp_path / "r", "optim.lrr=0.1")
    assert_one_line_error(code, err, "optim.lr")
    code, err = run_cli(capsys, "train", "--benchmark", tiny_benchmark, "--method", "ifl", "--out", tmp_path / "r",
                        "wrapper_args.sample_scal=2")
    assert_one_line_error(code, err, "wrapper_args.sample_scale")
    code, err = run_cli(capsys, "train", "--benchmark", tiny_benchmark, "--out", tmp_path / "r", "epochs=many")
    assert_one_line_error(code, err, "epochs")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [1, 2\n")
    code, err = run_cli(capsys, "train", "--benchmark", tiny_benchmark, "--out", tmp_path / "r", "--config", bad)
    assert_one_line_error(code, err, "bad.yaml")


def test_output_folder_with_a_different_run(capsys, tmp_path, tiny_benchmark):
    out = tmp_path / "r"
    code, _ = run_cli(capsys, "train", "--benchmark", tiny_benchmark, "--out", out, *fast_overrides(1))
    assert code == 0
    code, err = run_cli(capsys, "train", "--benchmark", tiny_benchmark, "--out", out, *fast_overrides(1), "seed=4")
    assert_one_line_error(code, err, str(out), "different run")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, err = run_cli(capsys, "train", "--benchmark", tiny_benchmark, "--out", other, *fast_overrides(1))
    assert_one_line_error(code, err, "not empty")
    assert (other / "notes.txt").read_text() == "mine"


def test_bad_predictions_files(capsys, tmp_path, tiny_benchmark):
    from glt.benchmark import Benchmark

    ids = Benchmark(tiny_benchmark).split("glt/test_gbl").id.tolist()
    pred = tmp_path / "p.csv"

    def write(rows, header="id,prediction"):
        pred.write_text(header + "\n" + "".join(f"{i},{p}\n" for i, p in rows))

    cases = [
        ([(i, 0) for i in ids[1:]], None, "have no prediction"),
        ([(i, 0) for i in ids] + [(ids[0], 1)], None, "more than once"),
        ([(i, 0) for i in ids] + [("intruder", 1)], None, "not in the split"),
        ([(i, 0) for i in ids[:-1]] + [(ids[-1], 9)], None, "outside"),
        ([(i, 0) for i in ids[:-1]] + [(ids[-1], "cat")], None, "not a class index"),
        ([(i, 0) for i in ids], "id,label", "columns"),
    ]
    for rows, header, fragment in cases:
        write(rows, header or "id,prediction")
        code, err = run_cli(capsys, *score_args(tiny_benchmark, pred))
        assert_one_line_error(code, err, "p.csv", fragment)
    code, err = run_cli(capsys, *score_args(tiny_benchmark, tmp_path / "absent.csv"))
    assert_one_line_error(code, err, "absent.csv")
    code, err = run_cli(capsys, "score", "--benchmark", tiny_benchmark, "--split", "glt/test_gbll", "--predictions", pred)
    assert_one_line_error(code, err, "glt/test_gbl")


def test_corrupt_checkpoint(capsys, tmp_path, tiny_benchmark):
    out = tmp_path / "r"
    code, _ = run_cli(capsys, "train", "--benchmark", tiny_benchmark, "--out", out, *fast_overrides(1))
    assert code == 0
    best = out / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:100])
    code, err = run_cli(capsys, "eval", out)
    assert_one_line_error(code, err, "best.pt")


def test_missing_image_found_before_training(capsys, tmp_path, bench_copy):
    """Benchmarks read from disk (not cached) are checked for missing files before the first epoch."""
    manifest = json.loads((bench_copy / "manifest.json").read_text())
    manifest["image_style"] = "imagenet"
    (bench_copy / "manifest.json").write_text(json.dumps(manifest))
    gone = sorted((bench_copy / "images").iterdir())[3]
    gone.unlink()
    code, err = run_cli(capsys, "train", "--benchmark", bench_copy, "--out", tmp_path / "r", *fast_overrides(1))
    assert_one_line_error(code, err, "image not found", gone.name)


# ---- never lose a user's files -----------------------------------------------------------------------------


def _train_args(bench, out, *extra):
    return ("train", "--benchmark", bench, "--out", out, *fast_overrides(1), *extra)


def test_overwrite_replaces_only_a_run_of_glt(capsys, tmp_path, tiny_benchmark):
    out = tmp_path / "r"
    assert run_cli(capsys, *_train_args(tiny_benchmark, out))[0] == 0
    stamp = (out / "eval.json").stat().st_mtime_ns
    # a run folder holding a file glt did not write: --overwrite refuses, naming it, and deletes nothing
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    code, err = run_cli(capsys, *_train_args(tiny_benchmark, out, "seed=3", "--overwrite"))
    assert_one_line_error(code, err, "notes.txt")
    assert snapshot(out) == before
    # without it, --overwrite replaces the run
    (out / "notes.txt").unlink()
    assert run_cli(capsys, *_train_args(tiny_benchmark, out, "seed=3", "--overwrite"))[0] == 0
    assert (out / "eval.json").stat().st_mtime_ns != stamp
    assert "seed: 3" in (out / "config.yaml").read_text()
    assert not (out / ".glt.lock").exists()


def test_resume_never_deletes(capsys, tmp_path, tiny_benchmark):
    """A folder holding config.yaml but no checkpoint (a run stopped in its first epoch): --resume starts
    it over in place; the user's files stay."""
    out = tmp_path / "r"
    assert run_cli(capsys, *_train_args(tiny_benchmark, out))[0] == 0
    shutil.rmtree(out / "checkpoints")
    (out / "eval.json").unlink()
    (out / "notes.txt").write_text("mine")
    code, err = run_cli(capsys, *_train_args(tiny_benchmark, out, "--resume"))
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "eval.json").is_file() and (out / "checkpoints" / "best.pt").is_file()
    assert [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [0]


def test_failed_train_leaves_nothing_that_blocks_a_rerun(capsys, tmp_path, tiny_benchmark):
    out = tmp_path / "r"
    code, err = run_cli(capsys, *_train_args(tiny_benchmark, out, "model.backbone=small_cnnn"))
    assert_one_line_error(code, err, "small_cnn")
    assert not out.exists()
    # the same through the Python API (no clean-up by the CLI): the corrected re-run is accepted
    from glt.config import build_config
    from glt.engine.trainer import train
    from glt.errors import GLTError

    bad = build_config(benchmark=str(tiny_benchmark), overrides=fast_overrides(1) + ["model.backbone=small_cnnn"])
    with pytest.raises(GLTError, match="small_cnn"):
        train(bad, out)
    assert (out / "config.yaml").is_file()
    code, err = run_cli(capsys, *_train_args(tiny_benchmark, out))
    assert code == 0, err
    assert "small_cnnn" not in (out / "config.yaml").read_text()


def test_demo_checks_arguments_before_deleting_or_building(capsys, tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    t0 = time.perf_counter()
    code, err = run_cli(capsys, "demo", "--out", out, "--overwrite", "--methods", "ce,bogus")
    assert_one_line_error(code, err, "bogus")
    assert time.perf_counter() - t0 < 10  # refused before building ColorDigits-GLT
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


_HOLD = """
import fcntl, os, sys, time
f = open(sys.argv[1], "a+")
fcntl.flock(f, fcntl.LOCK_EX)
f.seek(0); f.truncate(); f.write(str(os.getpid())); f.flush()
print("locked", flush=True)
time.sleep(120)
"""


def test_lock_refuses_a_second_training_and_takes_over_a_stale_one(capsys, tmp_path, tiny_benchmark):
    out = tmp_path / "r"
    out.mkdir()
    lock = out / ".glt.lock"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, err = run_cli(capsys, *_train_args(tiny_benchmark, out))
        assert_one_line_error(code, err, str(out), str(holder.pid))
        assert sorted(p.name for p in out.iterdir()) == [".glt.lock"]
        assert not (out / "config.yaml").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder was killed: its lock file (with its pid) stays behind and is taken over
    assert lock.read_text().strip() == str(holder.pid)
    code, err = run_cli(capsys, *_train_args(tiny_benchmark, out))
    assert code == 0, err
    assert (out / "eval.json").is_file()
    assert not lock.exists()  # released when the training ended


def test_lock_is_held_while_a_training_runs(tiny_benchmark, tmp_path, capsys):
    """A real second training while the first runs: refused, and the first finishes unharmed."""
    out = tmp_path / "r"
    args = ["train", "--benchmark", str(tiny_benchmark), "--out", str(out), *fast_overrides(20), "threads=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "glt", *args], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out / "config.yaml").is_file() and first.poll() is None:
            time.sleep(0.02)
        assert first.poll() is None, first.stderr.read()
        code, err = run_cli(capsys, *args)  # in this process: torch is loaded, it starts at once
        still_running = first.poll() is None
        assert still_running, "the first training ended before the second started: make it longer"
        assert_one_line_error(code, err, "in use", str(first.pid))
    finally:
        assert first.wait(timeout=300) == 0, first.stderr.read()
    assert len(json.loads((out / "eval.json").read_text())["splits"]) == 3
    assert [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()] == list(range(20))
    assert not (out / ".glt.lock").exists()


def test_nothing_is_unpickled(tmp_path, capsys, tiny_benchmark):
    """A checkpoint (or weights file) that would run code when unpickled is refused unread."""
    out = tmp_path / "r"
    assert run_cli(capsys, *_train_args(tiny_benchmark, out))[0] == 0
    _evil_file(out / "checkpoints" / "best.pt", tmp_path / "PWNED")
    code, err = run_cli(capsys, "eval", out)
    assert_one_line_error(code, err, "best.pt")
    assert not (tmp_path / "PWNED").exists()


# ---- output streams ----------------------------------------------------------------------------------------


def _closed_stdout(args, cwd) -> subprocess.CompletedProcess:
    """Run glt with the reading end of its stdout already closed (`glt ... | head` once head has exited)."""
    proc = subprocess.Popen([sys.executable, "-m", "glt", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    return subprocess.CompletedProcess(args, proc.wait(timeout=120), "", err)


def test_broken_pipe_exits_quietly(tmp_path, tiny_benchmark):
    r = _closed_stdout(["methods"], tmp_path)
    assert r.returncode == 1 and r.stderr == "", r.stderr
    preds = tmp_path / "p.csv"
    from glt.benchmark import Benchmark

    ids = Benchmark(tiny_benchmark).split("glt/test_gbl").id.tolist()
    preds.write_text("id,prediction\n" + "".join(f"{i},0\n" for i in ids))
    r = _closed_stdout(["score", "--benchmark", str(tiny_benchmark), "--split", "glt/test_gbl",
                        "--predictions", str(preds)], tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stderr == "", r.stderr


def test_run_with_a_relative_benchmark_path_of_an_older_glt_is_resumed(capsys, tmp_path, tiny_benchmark, monkeypatch):
    """config.yaml of an older glt holds the relative --benchmark: the same command still resumes it."""
    out = tmp_path / "r"
    assert run_cli(capsys, *_train_args(tiny_benchmark, out, "epochs=2"))[0] == 0
    (out / "eval.json").unlink()
    monkeypatch.chdir(tiny_benchmark.parent)
    config = out / "config.yaml"
    config.write_text(config.read_text().replace(f"benchmark: {tiny_benchmark}\n", f"benchmark: {tiny_benchmark.name}\n"))
    code, err = run_cli(capsys, "train", "--benchmark", tiny_benchmark.name, "--out", out, *fast_overrides(1),
                        "epochs=2", "--resume")
    assert code == 0, err
    assert (out / "eval.json").is_file()
