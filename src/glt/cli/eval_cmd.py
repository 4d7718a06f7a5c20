"""`glt eval`: (re-)score a trained run's best checkpoint on its track's test splits."""

from __future__ import annotations

import json
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "eval", help="score a trained run on its track's test splits",
        description="Load RUN_DIR's best-validation checkpoint, predict every test split of its track, and write "
        "predictions/ and eval.json. A folder of `glt run` (with glt/ and cbl/) is evaluated whole and its "
        "protocols.json rewritten (an older glt's results.json is read, and replaced by it).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--benchmark", help="use this benchmark directory instead of the one in the run's config "
                   "(e.g. after the benchmark was moved)")
    p.set_defaults(func=run)


def _load_one(run_dir: Path, benchmark: str | None):
    """The run's Setup with its best checkpoint loaded (and checked): nothing is written yet."""
    import os

    from glt.config import validate_config
    from glt.engine.trainer import Setup
    from glt.runtime.checkpoint import load_checkpoint
    from glt.runtime.run_dir import RunDir

    rd = RunDir(run_dir)
    cfg = rd.load_config(validate_config)
    if benchmark:
        cfg.data.benchmark = os.path.abspath(benchmark)
    setup = Setup(cfg)
    setup.load_weights(load_checkpoint(rd.best))
    return setup, rd


def _eval_one(loaded) -> dict:
    from glt.engine.trainer import test_run

    setup, rd = loaded
    return test_run(setup, rd, progress=setup.cfg.progress)


def run(args) -> int:
    from glt.errors import GLTError
    from glt.experiment import is_run_folder, protocol_results
    from glt.io import read_json
    from glt.runtime import layout

    root = Path(args.run_dir)
    if not root.exists():
        raise GLTError(f"run folder not found: {root}")
    if not root.is_dir():
        raise GLTError(f"{root} is a file, not a run folder")
    if args.benchmark:
        from glt.benchmark import Benchmark

        Benchmark(args.benchmark)  # checked once, before any run is loaded
    if is_run_folder(root):
        res = _eval_one(_load_one(root, args.benchmark))
        print(json.dumps({s: {k: m[k] for k in ("accuracy", "precision", "f1")} for s, m in res.items()}, indent=2))
        return 0
    tracks = [t for t in layout.TRACKS if is_run_folder(root / t)]
    if not tracks:
        raise GLTError(f"{root} is neither a run folder (config.yaml) nor a `glt run` folder (glt/, cbl/)")
    old = layout.protocols_file(root)  # an older glt's results.json is read, protocols.json written
    summary = read_json(old, "results file") if old is not None else {}
    loaded = {t: _load_one(root / t, args.benchmark) for t in tracks}  # every track checked before any is written
    results = {t: _eval_one(x) for t, x in loaded.items()}
    summary.update(protocol_results(results))
    layout.write_protocols(root, summary)
    print(json.dumps({p: {k: summary[p][k] for k in ("accuracy", "precision", "f1")}
                      for p in ("CLT", "GLT", "ALT") if p in summary}, indent=2))
    return 0
