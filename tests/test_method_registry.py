"""The registry's contract: every method's settings in one place (search spaces and paper values name real
config keys), registration by decorator and by entry point, hooks a wrapper forwards without code, IRM
without IFL's centers, and the head property IFL's center loss follows."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import fast_overrides
from glt.config import build_config
from glt.methods import METHODS, WRAPPERS, Context, Method, MethodWrapper, combinations, resolve_method
from glt.methods.base import HOOKS
from glt.models import create_backbone, create_head
from glt.search.space import COMMON_SPACE, Choice, draw

EVERY = METHODS.names() + WRAPPERS.names() + [c for w in WRAPPERS.names() for c in combinations(w)]


def _ctx(epochs: int = 10) -> Context:
    labels = np.repeat(np.arange(3), [6, 4, 2])
    return Context(3, np.bincount(labels), epochs, batch_size=4, labels=labels)


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
    return out


@pytest.mark.parametrize("name", EVERY)
def test_every_search_key_is_a_config_key_that_takes_its_draws(name, tiny_benchmark):
    """Draw the method's whole space twice and build the config with the draws: every key must exist (an
    unknown key is an error) and keep the drawn value, so a typo or a wrong type in a space fails here."""
    space = resolve_method(name).search_space()
    assert set(COMMON_SPACE) <= set(space)
    spec = resolve_method(name)
    for key in space:
        prefix, _, field = key.partition(".")
        if prefix == "method_args":
            assert field in spec.settings_cls.__dataclass_fields__, key
        elif prefix == "wrapper_args":
            assert spec.wrapper is not None and field in spec.wrapper.Settings.__dataclass_fields__, key
    for trial in range(2):
        values = draw(space, seed=0, method=name, trial=trial)
        over = [f"{k}={v}" for k, v in values.items()]
        cfg = build_config(method=name, benchmark=str(tiny_benchmark), overrides=fast_overrides(1) + over)
        for key, value in values.items():
            got = OmegaConf.select(cfg, key, throw_on_missing=True)
            assert got == (value if isinstance(space[key], Choice) else pytest.approx(value)), key


@pytest.mark.parametrize("kind", ["imagenet_glt", "mscoco_glt"])
@pytest.mark.parametrize("name", EVERY)
def test_paper_values_name_config_keys(kind, name, tiny_benchmark):
    cfg = build_config(method=name, benchmark=str(tiny_benchmark))
    for key in _flat(resolve_method(name).paper_settings(kind)):
        OmegaConf.select(cfg, key, throw_on_missing=True)  # a key the config lacks raises
        assert key.split(".")[0] in cfg, key


def test_wrapper_and_kind_values_win_key_by_key():
    spec = resolve_method("ifl+ldam")
    paper = spec.paper_settings("imagenet_glt")
    assert paper["optim"] == {"weight_decay": 5e-4, "schedule": "multistep", "gamma": 0.01}  # ldam's, IFL's decay
    tde = resolve_method("tde")
    assert (tde.paper_settings("imagenet_glt")["method_args"]["alpha"],
            tde.paper_settings("mscoco_glt")["method_args"]["alpha"]) == (2.0, 1.0)
    assert resolve_method("ce").paper_settings("imagenet_glt") == {}


def test_wrapper_forwards_every_hook_it_does_not_define():
    """A hook added to Method reaches the wrapped method with no forwarding code in the wrapper."""
    recording = type("Recording", (Method,), {h: (lambda h: lambda self, *a, **k: ("base", h, a))(h) for h in HOOKS})
    ctx = _ctx()
    wrapper = MethodWrapper(recording(None, ctx), None, ctx)
    for hook in HOOKS:
        if hook in ("state_dict", "load_state_dict"):
            continue
        assert getattr(wrapper, hook)(1, 2) == ("base", hook, (1, 2)), hook
    assert wrapper.state_dict() == {"base": ("base", "state_dict", ())}
    assert {"build_model", "loss", "predict_logits", "after_step"} <= set(HOOKS)


def test_irm_holds_the_environments_but_no_centers():
    spec = resolve_method("irm")
    m = spec.create(spec.settings_cls(), spec.wrapper_settings(), _ctx())
    m.build_model(create_backbone("small_cnn", width=4))
    assert not hasattr(m, "centers") and not hasattr(m, "center_opt")
    state = m.state_dict()
    assert "centers" not in state and state["env_weights"].shape == (2, 12)
    # a checkpoint of the former IRM (which carried IFL's centers) still loads
    old = {**state, "centers": torch.randn(3, 16), "env_weights": torch.rand(2, 12, dtype=torch.float64)}
    fresh = spec.create(spec.settings_cls(), spec.wrapper_settings(), _ctx())
    fresh.load_state_dict(old)
    torch.testing.assert_close(fresh.env_weights, old["env_weights"])


def test_heads_declare_whether_they_compare_by_angle():
    assert create_head("cosine", 8, 3).compares_by_angle is True
    assert create_head("linear", 8, 3).compares_by_angle is False
    assert create_head("multi_expert", 9, 3, num_experts=3).compares_by_angle is True  # cosine experts
    assert create_head("multi_expert", 9, 3, num_experts=3, expert_head="linear").compares_by_angle is False


@pytest.mark.parametrize("name", ["ifl", *combinations("ifl")])
def test_ifl_center_loss_is_the_built_heads(name):
    """Asked before the model exists (a probe) and after (the run's head), IFL picks the same center loss,
    and it is the cosine one exactly where the head is a cosine classifier (or cosine experts, TADE aside:
    the original's center_tade uses the Euclidean CenterLoss)."""
    spec = resolve_method(name)
    early = spec.create(spec.settings_cls(), spec.wrapper_settings(), _ctx()).center_kind
    built = spec.create(spec.settings_cls(), spec.wrapper_settings(), _ctx())
    model = built.build_model(create_backbone("small_cnn", width=4))
    head = model.head
    experts = getattr(head, "experts", [])
    cosine = type(head).__name__ == "CosineHead" or (
        spec.base.name != "tade" and len(experts) > 0 and all(type(e).__name__ == "CosineHead" for e in experts))
    assert early == built.center_kind == ("cosine" if cosine else "euclidean")


PLUGIN = '''
from dataclasses import dataclass
import torch.nn.functional as F
from glt.methods import METHODS, Method

@METHODS.register("plug_smooth")
class PlugSmooth(Method):
    name = "plug_smooth"
    description = "a method from another package"

    @dataclass
    class Settings:
        eps: float = 0.1

    def loss(self, out, labels):
        return F.cross_entropy(out.logits, labels, label_smoothing=self.settings.eps)
'''


def _plugin_dir(tmp_path, module: str, source: str):
    """A module and the .dist-info of an installed distribution that names it in the glt.methods group."""
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    info = tmp_path / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[glt.methods]\n{module}_methods = {module}\n")
    return tmp_path


def _python(path, code: str) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)


def test_an_entry_point_registers_a_method_of_another_package(tmp_path):
    path = _plugin_dir(tmp_path, "glt_plugin_demo", PLUGIN)
    r = _python(path, "from glt.methods import PLUGINS, METHODS, resolve_method\n"
                      "print(PLUGINS, 'plug_smooth' in METHODS, resolve_method('ifl+plug_smooth').base.__name__)")
    assert r.returncode == 0, r.stderr[-800:]
    assert r.stdout.split() == ["['glt_plugin_demo_methods']", "True", "PlugSmooth"]
    r = _python(path, "from glt.cli.main import main\nmain(['methods', 'plug_smooth'])")
    assert "a method from another package" in r.stdout and "method_args.eps = 0.1" in r.stdout, r.stderr[-800:]


def test_a_broken_plugin_is_one_error_naming_its_entry_point(tmp_path):
    path = _plugin_dir(tmp_path, "glt_broken_demo", "raise ImportError('needs a missing package')\n")
    r = _python(path, "from glt.errors import GLTError\ntry:\n    import glt.methods\nexcept GLTError as e:\n"
                      "    print('GLTError', e)")
    assert r.stdout.startswith("GLTError") and "glt_broken_demo_methods" in r.stdout, (r.stdout, r.stderr[-800:])
    assert "needs a missing package" in r.stdout and len(r.stdout.strip().splitlines()) == 1
