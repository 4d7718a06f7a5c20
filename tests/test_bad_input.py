"""Every user error ends as one line on stderr with exit status 2, no traceback."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import fast_overrides
from glt.cli.main import main


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    return e.value.code, err


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("glt: error:"), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, err


@pytest.fixture()
def bench_copy(tiny_benchmark, tmp_path):
    dst = tmp_path / "bench"
    shutil.copytree(tiny_benchmark, dst)
    return dst


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
