"""`glt run`: one method, both training tracks, the three protocols (docs/metrics.md) in protocols.json
(the file names: glt.runtime.layout)."""

from __future__ import annotations

from pathlib import Path

from glt.config import build_config
from glt.errors import GLTError
from glt.evaluation import PROTOCOLS
from glt.io import read_json
from glt.runtime import layout
from glt.runtime.owned_files import check_layout_folder
from glt.runtime.run_dir import RunDir, finish_claim

RESULTS = layout.PROTOCOLS  # kept for callers that import it (cli/report.py): prefer has_protocol_results


def protocol_results(track_results: dict[str, dict]) -> dict:
    """{track: {split: metrics}} -> {protocol: metrics}."""
    out = {}
    for protocol, (track, split) in PROTOCOLS.items():
        if track in track_results and split in track_results[track]:
            out[protocol] = track_results[track][split]
    return out


def run_protocols(
    benchmark: str,
    method: str,
    out: str | Path,
    *,
    seed: int = 0,
    overrides: list[str] = (),
    yaml_file: str | None = None,
    preset: str | None = None,
    tracks: tuple[str, ...] = ("glt", "cbl"),
    resume: bool = False,
    overwrite: bool = False,
) -> dict:
    """Train `method` on each track's training set into OUT/<track>/ and write OUT/protocols.json. Both
    tracks' configs and the folder are checked before the first training starts."""
    # imported here, so reading results (glt report) does not load torch
    from glt.runtime import distributed as dist

    out = Path(out)
    cfgs = {
        track: build_config(
            method=method, benchmark=benchmark, yaml_file=yaml_file, preset=preset,
            overrides=list(overrides) + [f"seed={seed}", f"data.track={track}"],
        )
        for track in tracks
    }
    check_protocol_folder(out, overwrite)
    results, counts = {}, {}
    for track, cfg in cfgs.items():
        results[track] = train_run(cfg, out / track, resume=resume, overwrite=overwrite)
        counts[track] = _train_counts(cfg)
    summary = {
        "method": method,
        "seed": seed,
        "benchmark": str(cfgs[tracks[0]].data.benchmark) if tracks else str(benchmark),
        **protocol_results(results),
        "train_class_counts": counts,
    }
    if dist.is_main():
        layout.write_protocols(out, summary)
    return summary


def train_run(cfg, out: str | Path, resume: bool = False, overwrite: bool = False) -> dict:
    """glt.engine.trainer.train, then release the run folder's lock; a training that fails before its first
    checkpoint leaves nothing behind (its files and the folders it created are removed), a resumed one
    keeps everything."""
    from glt.engine.trainer import train

    failed = True
    try:
        results = train(cfg, out, resume=resume, overwrite=overwrite)
        failed = False
        return results
    finally:
        finish_claim(out, failed)


def check_protocol_folder(out: Path, overwrite: bool) -> None:
    """A `glt run` folder (glt/, cbl/, protocols.json)."""
    check_layout_folder(out, layout.PROTOCOL_LAYOUT, "run", overwrite)


def check_sweep_folder(out: Path) -> None:
    """A sweep (or demo) folder; a benchmark that `glt build digits` wrote into OUT/benchmark counts as
    glt's, as in the demo and benchmarks/zoo_sweep.sh."""
    check_layout_folder(out, layout.DEMO_LAYOUT, "sweep")


def run_folder(out: str | Path, method: str, seed: int) -> Path:
    """Where a sweep puts one (method, seed) run."""
    return layout.sweep_run(out, method, seed)


def sweep(
    benchmark: str,
    methods: list[str],
    seeds: list[int],
    out: str | Path,
    *,
    overrides: list[str] = (),
    yaml_file: str | None = None,
    preset: str | None = None,
    check_folder: bool = True,
) -> list[tuple[Path, dict]]:
    """`glt run` for every (method, seed) into OUT/runs/METHOD/seedN, sequentially. Complete runs are
    skipped and unfinished ones resumed, so a stopped sweep continues where it stopped. Every method
    name and the config are checked before the first run starts."""
    check_sweep_settings(benchmark, methods, seeds, overrides=overrides, yaml_file=yaml_file, preset=preset)
    if check_folder:
        check_sweep_folder(Path(out))
    runs = []
    for method in methods:
        for seed in seeds:
            folder = run_folder(out, method, seed)
            res = run_protocols(benchmark, method, folder, seed=seed, overrides=overrides, yaml_file=yaml_file,
                                preset=preset, resume=True)
            runs.append((folder, res))
    return runs


def check_sweep_settings(benchmark, methods: list[str], seeds: list[int], *, overrides=(), yaml_file=None,
                         preset=None, image_style: str | None = None) -> None:
    """Every method name, seed and setting of a sweep, checked before anything runs (GLTError)."""
    from glt.methods import resolve_method

    for method in methods:
        resolve_method(method)
        for seed in seeds:
            build_config(method=method, benchmark=str(benchmark), yaml_file=yaml_file, preset=preset,
                         overrides=list(overrides) + [f"seed={seed}"], image_style=image_style)


def _train_counts(cfg) -> list[int]:
    from glt.benchmark import Benchmark

    b = Benchmark(cfg.data.benchmark)
    return b.split(f"{cfg.data.track}/train").class_counts(b.num_classes).tolist()


def protocol_files(folder: Path) -> list[Path]:
    """The protocol results of every `glt run` folder under `folder`: its protocols.json, or the results.json
    of a folder written before that name (a report's results.json is told apart by its content)."""
    found = []
    for name in (layout.PROTOCOLS, layout.OLD_PROTOCOLS):
        for f in folder.rglob(name):
            if layout.protocols_file(f.parent) == f:
                found.append(f)
    return sorted(found)


def has_protocol_results(path: str | Path) -> bool:
    """A results file, or a folder with a `glt run` folder somewhere under it."""
    path = Path(path)
    return path.is_file() or bool(protocol_files(path))


def collect_results(paths: list[str | Path]) -> list[tuple[Path, dict]]:
    """Every `glt run` result (protocols.json; an old folder's results.json) under the given folders (or
    the files themselves)."""
    found = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found += protocol_files(p)
        else:
            raise GLTError(f"no such run folder or results file: {p}")
    runs = []
    for f in found:
        r = read_json(f, "results file")
        if "method" in r and any(k in r for k in PROTOCOLS):
            runs.append((f.parent, r))
    if not runs:
        raise GLTError(f"no run results ({layout.PROTOCOLS} of `glt run`, or {layout.OLD_PROTOCOLS} of an older glt) "
                       f"found under {', '.join(map(str, paths))}")
    return runs


def is_run_folder(path: Path) -> bool:
    return RunDir(path).config.is_file()
