"""The conformance kit (`ftx.testing.conformance.check_plugin`): every shipped method passes it,
an objective passes it under a method, and a broken plugin — method or objective — fails it with
a message naming the plugin, the check and, for a run's check, the method × objective pair
(fast tier)."""

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
    return [Option("depth", "int", 2, "once"), Option("depth", "int", 1, "twice")]
"""
BAD_DEFAULT = """
from ftx import hookimpl
from ftx.options import Option

@hookimpl
def method_options():
    return [Option("depth", "int", "deep", "not an int")]
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
    """Fake plugin distributions, methods and objectives (BROKEN_OBJECTIVES, below), visible
    here and in the kit's subprocesses."""
    root = tmp_path / "site"
    methods = [
        ("heavy", HEAVY),
        ("badopt", BAD_OPTION),
        ("baddefault", BAD_DEFAULT),
        ("frozen", FREEZES_ALL),
        ("noop", LEARNS_NOTHING),
    ]
    for name, source in methods:
        make_dist(root, f"ftx-{name}", name, f"ftx_{name}_mod", source)
    for name, source in BROKEN_OBJECTIVES.items():
        make_dist(root, f"ftx-{name}", name, f"ftx_{name}_mod", source, group="ftx.objectives")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", str(root))
    return root


@pytest.mark.parametrize(
    ("plugin", "check", "detail"),
    [
        ("heavy", "lazy-import", "imported torch"),
        ("badopt", "options", "more than once"),
        ("baddefault", "options", "default 'deep' is not an int"),
        ("frozen", "run", "no trainable parameters"),
        ("noop", "(loss|export|learned)", ""),
        ("missing", "discovery", "not installed"),
        # objectives, checked under one method
        ("heavyobj", "lazy-import", "imported torch"),
        ("badtraits", "traits", "must return an ftx.context.ObjectiveTraits"),
        ("badargs", "arguments", "not a subclass of transformers.TrainingArguments"),
    ],
)
def test_a_broken_plugin_fails_naming_plugin_and_check(
    broken_plugins, tmp_path, kit_inputs, plugin, check, detail
):
    under = {"methods": ["sft"]} if plugin in BROKEN_OBJECTIVES else {}
    with pytest.raises(
        AssertionError, match=rf"plugin '{plugin}' failed check '{check}'.*{detail}"
    ):
        check_plugin(plugin, tmp_path / "kit", **kit_inputs, **under)


def test_steps_below_four_are_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 4"):
        check_plugin("fft", tmp_path, steps=2)


# --- objectives through the kit -------------------------------------------------------------

OBJECTIVE_CHECKS = [
    "discovery",
    "lazy-import",
    "options",
    "traits",
    "arguments",
    "run",
    "loss",
    "export",
    "learned",
    "cli",
]


def test_an_objective_passes_the_kit_under_a_method(tmp_path, kit_inputs):
    # hook: objective_traits, hook: arguments_class, hook: objective_options — the kit checks
    # each, then runs the objective under the method through the real host.
    report = check_plugin("supervised", tmp_path, methods=["sft"], **kit_inputs)
    assert report.kind == "objective" and report.distribution == "ftx-core"
    assert report.passed[: len(OBJECTIVE_CHECKS)] == OBJECTIVE_CHECKS
    assert report.traits is not None and report.traits.metrics[0] == "exact"
    assert report.arguments_class.endswith(".SFTConfig")
    (run,) = report.runs
    assert (run.method, run.objective) == ("sft", "supervised")
    assert run.pair == "method 'sft' × objective 'supervised'"
    assert run.hooks_answered["build_trainer"] == "supervised"
    assert run.eval_before["metric"] == run.eval_after["metric"] == "exact"
    assert run.fit_loss is not None and run.fit_loss[1] < run.fit_loss[0]
    assert report.run_dir == run.run_dir and report.method == "sft"  # the first run's fields


HEAVY_OBJECTIVE = """
import torch
from ftx import hookimpl
from ftx.context import ObjectiveTraits

@hookimpl
def objective_traits():
    return ObjectiveTraits()
"""
BAD_TRAITS = """
from ftx import hookimpl

@hookimpl
def objective_traits():
    return {"metrics": ["exact"]}
"""
BAD_ARGUMENTS = """
from ftx import hookimpl
from ftx.context import ObjectiveTraits

@hookimpl
def objective_traits():
    return ObjectiveTraits()

@hookimpl
def arguments_class():
    return dict, {}
"""
# Supervised's hooks (imported hook implementations keep their marks), but a trainer that
# does not move, or held-out scores under a metric the objective does not declare.
SUPERVISED = """
from ftx.objectives.supervised import (
    arguments_class, data_collator, load_rows, objective_traits, score_heldout, tokenize_rows,
)
"""
LEARNS_NOTHING_OBJECTIVE = (
    SUPERVISED
    + """
from ftx import hookimpl

@hookimpl
def build_trainer(run, model, tokenizer, train_dataset, eval_dataset, data_collator, callbacks):
    from ftx.defaults import make_sft_trainer

    return make_sft_trainer(run, model, tokenizer, train_dataset, eval_dataset, data_collator,
                            callbacks, learning_rate=0.0)
"""
)
WRONG_METRIC = """
from ftx.objectives.supervised import (
    arguments_class, build_trainer, data_collator, load_rows, objective_traits, tokenize_rows,
)
from ftx import hookimpl

@hookimpl
def score_heldout(rows):
    return {"metric": "bogus", "score": 1.0, "n": len(rows)}
"""


BROKEN_OBJECTIVES = {
    "heavyobj": HEAVY_OBJECTIVE,
    "badtraits": BAD_TRAITS,
    "badargs": BAD_ARGUMENTS,
    "stillobj": LEARNS_NOTHING_OBJECTIVE,
    "wrongmetric": WRONG_METRIC,
    "unloadable": "raise RuntimeError('boom at import')\n",
}


def test_an_objective_that_learns_nothing_fails_naming_the_pair(
    broken_plugins, tmp_path, kit_inputs
):
    pair = r"\(method 'sft' × objective 'stillobj'\)"
    with pytest.raises(
        AssertionError, match=rf"plugin 'stillobj' failed check '(loss|export|learned)' {pair}"
    ):
        check_plugin("stillobj", tmp_path / "kit", methods=["sft"], **kit_inputs)


def test_a_method_under_a_broken_objective_fails_naming_the_pair(
    broken_plugins, tmp_path, kit_inputs
):
    with pytest.raises(
        AssertionError,
        match=r"plugin 'sft' failed check 'run' \(method 'sft' × objective 'wrongmetric'\): "
        r"eval_before is scored with 'bogus', not data.eval_metric 'exact'",
    ):
        check_plugin("sft", tmp_path / "kit", objectives=["wrongmetric"], **kit_inputs)


@pytest.mark.parametrize(
    ("plugin", "kwargs", "detail"),
    [
        ("sft", {"objectives": ["nope"]}, "cannot check it with objective 'nope'"),
        ("sft", {"objectives": ["fft"]}, "fft is a method, not an objective"),
        ("sft", {"methods": ["fft"]}, "'sft' is a method: pass objectives="),
        ("supervised", {"objectives": "all"}, "'supervised' is an objective: pass methods="),
        ("supervised", {"methods": ["dpo"]}, "cannot check it with method 'dpo'"),
    ],
)
def test_pairing_with_what_is_not_installed_fails_discovery(tmp_path, plugin, kwargs, detail):
    with pytest.raises(AssertionError, match=rf"failed check 'discovery': .*{detail}"):
        check_plugin(plugin, tmp_path, **kwargs)


def test_all_pairs_a_method_with_every_objective_that_loads(broken_plugins):
    from ftx.testing.conformance import ConformanceReport
    from ftx.testing.conformance.static_checks import installed

    report = ConformanceReport(plugin="sft")
    names = [info.name for info in installed("all", "objective", report)]
    assert {"supervised", "badtraits", "stillobj"} <= set(names)
    assert "heavyobj" in names  # it loads (lazily or not): its own kit fails it
    assert "unloadable" not in names
    assert "boom at import" in report.skipped["objective unloadable"]


def test_a_preference_objective_passes_the_kit_on_preference_pairs(tmp_path, kit_inputs):
    """The kit writes tiny preference pairs for an objective whose traits say so, and measures
    what it learned as the chosen-over-rejected margin."""
    from ftx.plugins import discover

    if "dpo" not in {p.name for p in discover("objective") if p.ok}:
        pytest.skip("ftx-preference is not installed")
    report = check_plugin(
        "dpo", tmp_path, methods=["qlora"], model=kit_inputs["model"], sets=["method.r=4"]
    )
    assert report.passed[: len(OBJECTIVE_CHECKS)] == OBJECTIVE_CHECKS
    assert report.traits.data == "preference pairs" and report.traits.reference == "policy"
    (run,) = report.runs
    assert run.fit_loss is None and run.fit_margin[1] > run.fit_margin[0]
    assert run.eval_before["metric"] == run.eval_after["metric"] == "pairwise"
