"""The conformance kit (`ftx.testing.conformance.check_plugin`): every shipped method passes it,
and a broken plugin fails it with a message naming the plugin and the check (fast tier)."""

from __future__ import annotations

import pytest

from ftx.plugins import METHOD_HOOKS
from ftx.testing.conformance import TINY_LAYERS, check_plugin
from ftx.testing.tiny import make_tiny_model, write_tiny_dataset
from tests.fake_dists import make_dist

# The plugins CI installs. IA3 (examples/ftx-ia3) trains at its own learning rate.
PLUGINS = {"fft": {}, "sft": {}, "qlora": {"sets": ["method.r=4"]}, "ia3": {"learning_rate": None}}


@pytest.fixture(scope="module")
def kit_inputs(tmp_path_factory):
    """The kit's tiny model and data, built once for this module."""
    root = tmp_path_factory.mktemp("kit-inputs")
    return {
        "model": make_tiny_model(root / "model", num_layers=TINY_LAYERS),
        "data": write_tiny_dataset(root / "train.jsonl", rows=48, seed=0),
    }


@pytest.mark.parametrize("plugin", sorted(PLUGINS))
def test_plugin_passes_the_kit(plugin, tmp_path, kit_inputs):
    # hook: method_options, hook: train_defaults, hook: load_model, hook: select_trainable,
    # hook: build_trainer, hook: export — the kit drives each through the real host.
    report = check_plugin(plugin, tmp_path, **kit_inputs, **PLUGINS[plugin])
    checks = ["discovery", "lazy-import", "options", "run", "loss", "export", "learned", "cli"]
    assert report.passed[: len(checks)] == checks
    assert set(report.hooks_answered) == set(METHOD_HOOKS)
    assert report.distribution == f"ftx-{plugin}"
    assert report.fit_loss is not None and report.fit_loss[1] < report.fit_loss[0]
    if plugin in {"qlora", "ia3"}:  # adapter methods: adapter/ matched the merged model/
        assert "adapter" in report.artifacts
    assert "gpu-bf16" in report.passed or report.skipped["gpu-bf16"] == "no CUDA device"


HEAVY = """
import torch
from ftx import hookimpl

@hookimpl
def train_defaults(device):
    return {"learning_rate": 1e-3}
"""
BAD_OPTION = """
from ftx import hookimpl
from ftx.options import Option

@hookimpl
def method_options():
    return [Option("depth", "int", "deep", "not an int"), Option("depth", "int", 1, "twice")]
"""
FREEZES_ALL = """
from ftx import hookimpl

@hookimpl
def select_trainable(model):
    for p in model.parameters():
        p.requires_grad_(False)
    return model
"""
LEARNS_NOTHING = """
from ftx import hookimpl

@hookimpl
def build_trainer(run, model, tokenizer, train_dataset, eval_dataset, data_collator, callbacks):
    from ftx.defaults import make_sft_trainer

    return make_sft_trainer(run, model, tokenizer, train_dataset, eval_dataset, data_collator,
                            callbacks, learning_rate=0.0)
"""


@pytest.fixture
def broken_plugins(tmp_path, monkeypatch):
    """Fake plugin distributions, visible here and in the kit's subprocesses."""
    root = tmp_path / "site"
    for name, source in [
        ("heavy", HEAVY),
        ("badopt", BAD_OPTION),
        ("frozen", FREEZES_ALL),
        ("noop", LEARNS_NOTHING),
    ]:
        make_dist(root, f"ftx-{name}", name, f"ftx_{name}_mod", source)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", str(root))
    return root


@pytest.mark.parametrize(
    ("plugin", "check", "detail"),
    [
        ("heavy", "lazy-import", "imported torch"),
        ("badopt", "options", "more than once"),
        ("frozen", "run", "no trainable parameters"),
        ("noop", "(loss|export|learned)", ""),
        ("missing", "discovery", "not installed"),
    ],
)
def test_a_broken_plugin_fails_naming_plugin_and_check(
    broken_plugins, tmp_path, kit_inputs, plugin, check, detail
):
    with pytest.raises(
        AssertionError, match=rf"plugin '{plugin}' failed check '{check}'.*{detail}"
    ):
        check_plugin(plugin, tmp_path / "kit", **kit_inputs)


def test_steps_below_four_are_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 4"):
        check_plugin("fft", tmp_path, steps=2)
