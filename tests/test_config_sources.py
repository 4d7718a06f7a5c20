"""Where each config value came from (build_config(sources=...), `glt config --sources`)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from glt.config import build_config


def leaves(d, prefix=""):
    if isinstance(d, dict) and d:
        return {k: v for key, sub in d.items() for k, v in leaves(sub, f"{prefix}{key}.").items()}
    return {prefix[:-1]: d}


@pytest.mark.parametrize("method,overrides,preset", [
    ("ce", [], None),
    ("ifl+ldam", ["optim.lr=0.02", "wrapper_args.center_lr=0.1"], None),
    ("crt", ["epochs=3", "model.options={width: 8}"], None),
    ("ifl", ["data.track=cbl"], None),
])
def test_result_is_the_same_with_and_without_sources(tiny_benchmark, tmp_path, method, overrides, preset):
    (tmp_path / "c.yaml").write_text("optim:\n  momentum: 0.5\nseed: 3\n")
    kwargs = dict(method=method, benchmark=str(tiny_benchmark), yaml_file=str(tmp_path / "c.yaml"),
                  overrides=overrides, preset=preset, extra={"data": {"track": "glt"}})
    plain = build_config(**kwargs)
    sources: dict = {}
    traced = build_config(**kwargs, sources=sources)
    assert OmegaConf.to_yaml(plain) == OmegaConf.to_yaml(traced)
    # every value of the result has a source
    assert set(leaves(OmegaConf.to_container(traced, resolve=True))) <= set(sources)


def test_sources_on_a_constructed_case(tiny_benchmark, tmp_path):
    from glt.config import STYLE_BACKBONE_OPTIONS, STYLE_PRESETS
    from glt.methods import resolve_method

    (tmp_path / "c.yaml").write_text("epochs: 7\noptim:\n  lr: 0.03\n")
    sources: dict = {}
    cfg = build_config(method="ifl+ldam", benchmark=str(tiny_benchmark), yaml_file=str(tmp_path / "c.yaml"),
                       overrides=["epochs=2", "method_args.scale=20"], extra={"seed": 4}, sources=sources)
    spec = resolve_method("ifl+ldam")
    # the reference, by hand: the last layer naming a key wins
    want = {k: "default" for k in leaves(OmegaConf.to_container(cfg, resolve=True))}
    want.update({k: "benchmark style small" for k in leaves(STYLE_PRESETS["small"])})  # the tiny benchmark's style
    want.update({f"model.options.{k}": "benchmark style small" for k in STYLE_BACKBONE_OPTIONS["small"]["small_cnn"]})
    want.update({k: "method ldam" for k in leaves(dict(spec.base.train_defaults))})
    want.update({k: "wrapper ifl" for k in leaves(dict(spec.wrapper.train_defaults))})
    want.update({"optim.lr": f"file {tmp_path / 'c.yaml'}", "epochs": "override", "method_args.scale": "override",
                 "seed": "command line", "method": "command line", "data.benchmark": "command line"})
    assert {k: sources[k] for k in want} == want
    assert (cfg.epochs, cfg.optim.lr, cfg.method_args.scale, cfg.seed) == (2, 0.03, 20.0, 4)


def test_config_sources_cli(tiny_benchmark, capsys):
    from glt.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["config", "--benchmark", str(tiny_benchmark), "--method", "ce", "--sources", "optim.lr=0.07"])
    assert e.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert "optim.lr: 0.07  # override" in lines
    assert "data.batch_size: 64  # benchmark style small" in lines
    assert "optim.nesterov: false  # default" in lines


@pytest.mark.parametrize("overrides,expected", [
    ([], None),  # None: the small benchmark style's options for its small CNN (STYLE_BACKBONE_OPTIONS)
    (["model.options.width=8"], {"width": 8}),  # the user's own width wins
    (["model.backbone=timm:resnet18"], {}),  # another backbone never receives the small CNN's width
    (["model.backbone=timm:resnet18", "model.options.drop_rate=0.1"], {"drop_rate": 0.1}),
])
def test_style_options_reach_only_their_backbone(tiny_benchmark, overrides, expected):
    from glt.config import STYLE_BACKBONE_OPTIONS

    if expected is None:
        expected = STYLE_BACKBONE_OPTIONS["small"]["small_cnn"]
        assert expected  # the case is only a test while the style sets something
    cfg = build_config(method="ce", benchmark=str(tiny_benchmark), overrides=overrides)
    assert OmegaConf.to_container(cfg.model.options) == expected
