"""The report's figures, checked through their matplotlib objects (ticks, axes, labels, legends), not pixels:
what a reader needs to understand each figure without its caption."""

from __future__ import annotations

import json

import numpy as np
import pytest

from glt.report.figure_environments import draw_environment_stats, environment_stats, pick_environment_runs
from glt.report.figure_per_class import draw_per_class_accuracy, per_class_accuracy
from glt.report.plots import draw_attribute_accuracy

GLT_COUNTS = [50, 30, 20, 10, 5]
CBL_COUNTS = [12, 12, 12, 12, 12]


def _result(method: str, seed: int, bench, num_classes: int = 5, glt=None, cbl=None) -> dict:
    rng = np.random.default_rng(seed)

    def protocol():
        return {"accuracy": 0.5, "per_class": {"accuracy": rng.uniform(0, 1, num_classes).tolist()},
                "by_attribute": {str(a): {"accuracy": float(rng.uniform())} for a in range(3)}}

    return {"method": method, "seed": seed, "benchmark": str(bench), "CLT": protocol(), "GLT": protocol(),
            "ALT": protocol(), "train_class_counts": {"glt": glt or GLT_COUNTS, "cbl": cbl or CBL_COUNTS}}


def _bench(tmp_path, classes):
    bench = tmp_path / "bench"
    bench.mkdir(exist_ok=True)
    (bench / "manifest.json").write_text(json.dumps({"classes": classes}))
    return bench


@pytest.fixture
def runs(tmp_path):
    bench = _bench(tmp_path, ["cat", "dog", "owl", "eel", "yak"])
    return [(tmp_path / f"{m}{s}", _result(m, s, bench)) for m in ("ce", "ifl") for s in (0, 1)]


def _panels(fig):
    """(accuracy axes, count axes) per protocol column, in CLT, GLT, ALT order."""
    axes = fig.axes
    n = len(axes) // 2
    return list(zip(axes[:n], axes[n:]))


def test_per_class_one_y_axis_per_panel_and_the_right_training_split(runs):
    fig = draw_per_class_accuracy(runs)
    assert len(fig.axes) == 6  # 3 protocols x (accuracy, counts): no twin axis anywhere
    panels = _panels(fig)
    for (acc, cnt), (protocol, train, test) in zip(panels, [("CLT", "Train-GLT", "Test-CBL"),
                                                           ("GLT", "Train-GLT", "Test-GBL"),
                                                           ("ALT", "Train-CBL", "Test-GBL")]):
        assert protocol in acc.get_title() and train in acc.get_title() and test in acc.get_title()
        assert "accuracy" in acc.get_ylabel()
        assert train in cnt.get_ylabel(), (protocol, cnt.get_ylabel())
        heights = [p.get_height() for p in cnt.patches]
        assert heights == (CBL_COUNTS if protocol == "ALT" else GLT_COUNTS)


def test_per_class_markers_not_lines_and_integer_ticks_with_class_names(runs):
    fig = draw_per_class_accuracy(runs)
    for acc, cnt in _panels(fig):
        for line in acc.get_lines():
            if np.size(line.get_xdata()) > 2:  # data, not a slot separator
                assert line.get_linestyle() == "None", "a line joins unrelated classes"
                assert line.get_marker() not in (None, "", "None")
        ticks = cnt.get_xticks()
        assert np.array_equal(ticks, np.round(ticks)) and list(ticks) == [0, 1, 2, 3, 4]
        assert [t.get_text() for t in cnt.get_xticklabels()] == ["cat", "dog", "owl", "eel", "yak"]
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["ce (2 seeds)", "ifl (2 seeds)"]


def test_per_class_many_classes_show_the_rank_on_integer_ticks(tmp_path):
    C = 120
    bench = _bench(tmp_path, [f"c{i}" for i in range(C)])
    counts = list(range(C * 10, 0, -10))
    runs = [(tmp_path / "r", _result("ce", 0, bench, C, glt=counts, cbl=[7] * C))]
    fig = draw_per_class_accuracy(runs)
    for _, cnt in _panels(fig):
        assert "rank" in cnt.get_xlabel()
        ticks = [t for t in cnt.get_xticks() if cnt.get_xlim()[0] <= t <= cnt.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)
        assert not any(t.get_text().startswith("c") for t in cnt.get_xticklabels())
    per_class_accuracy(runs, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0


def test_attribute_accuracy_titles_name_the_splits(runs):
    fig = draw_attribute_accuracy(runs)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[2].startswith("ALT") and "Train-CBL" in titles[2] and "Test-GBL" in titles[2]


def _ifl_run(folder, rule="intra", epochs=(7, 10), num_envs=2):
    (folder / "glt").mkdir(parents=True)
    lines = [json.dumps({"epoch": e, "loss": 1.0})for e in range(12)]
    for e in epochs:
        envs = [{"effective_size": 100.0 / (k + 1), "class_imbalance": 10.0 / (k + 1),
                 "attribute_share": [0.9 - 0.2 * k, 0.08 + 0.1 * k, 0.02 + 0.1 * k]} for k in range(num_envs)]
        lines.append(json.dumps({"epoch": e, "ifl_environments": {"epoch": e, "environments": envs}}))
    (folder / "glt" / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "glt" / "config.yaml").write_text(f"wrapper_args:\n  env_rule: {rule}\n  num_envs: {num_envs}\n")
    return folder


def test_environments_integer_epoch_ticks_colours_markers_and_a_legend_entry_each(tmp_path):
    runs = [(_ifl_run(tmp_path / "ifl"), {"method": "ifl"}),
            (_ifl_run(tmp_path / "irm", rule="correctness", num_envs=2), {"method": "irm"}),
            (tmp_path / "ce", {"method": "ce"})]
    picked = pick_environment_runs(runs)
    assert list(picked) == ["ifl", "irm"]
    fig = draw_environment_stats(picked)
    assert len(fig.axes) == 2 * (2 + 3)  # per method: size, imbalance, one panel per attribute
    for ax in fig.axes:
        assert list(ax.get_xticks()) == [7, 10]
        styles = {(line.get_color(), line.get_marker()) for line in ax.get_lines()}
        assert len(styles) == 2, "each environment has its own colour and marker"
        assert all(line.get_linestyle() == "-" for line in ax.get_lines())  # not told apart by dashes
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(texts) == 4 and [t[:3] for t in texts] == ["e1:", "e2:", "e1:", "e2:"]
    assert "inside each class" in texts[1] and "mispredicted" in texts[3]
    assert environment_stats(runs, tmp_path / "env.png") == tmp_path / "env.png"
    assert environment_stats(runs[2:], tmp_path / "none.png") is None


def test_class_distribution_draws_zero_counts_at_zero():
    stats_mod = pytest.importorskip("glt.benchmark.stats")
    draw = getattr(stats_mod, "draw_class_distribution", None)
    if draw is None:
        pytest.skip("glt.benchmark.stats has no draw_class_distribution yet (the figure is still drawn in place)")
    stats = {"splits": {"glt/train": {"class_counts": [40, 20, 5]}, "glt/val": {"class_counts": [4, 0, 2]},
                        "cbl/train": {"class_counts": [9, 9, 9]}}}
    fig = draw(stats)
    glt_ax = fig.axes[0]
    assert glt_ax.get_yscale() == "symlog" and glt_ax.get_ylim()[0] == 0
    assert glt_ax.get_xlabel() and glt_ax.get_ylabel()
    ys = np.concatenate([line.get_ydata() for line in glt_ax.get_lines()])
    assert 0 in ys and not np.any((ys > 0) & (ys < 1))  # the zero is at 0, not lifted to 0.8
