"""Discovery, isolation and selection of method plugins (fake distributions on sys.path)."""

from __future__ import annotations

import json

import pytest

from ftx.errors import BadInput
from ftx.plugins import call_first, discover, get_plugin, manager_for
from tests.fake_dists import make_dist

GOOD = """
from ftx import hookimpl
from ftx.options import Option

@hookimpl
def method_options():
    return [Option("alpha", "float", 0.5, "a knob")]

@hookimpl
def select_trainable(run, model):
    return "selected-by-good"
"""
BROKEN = "raise RuntimeError('boom at import')\n"
MISSIGNED = """
from ftx import hookimpl

@hookimpl
def select_trainable(run, model, surprise):
    return model
"""
TYPO = """
from ftx import hookimpl

@hookimpl
def select_trainables(run, model):
    return model
"""


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    root = tmp_path / "site"
    make_dist(root, "ftx-good", "good", "ftx_good_mod", GOOD)
    make_dist(root, "ftx-broken", "broken", "ftx_broken_mod", BROKEN)
    make_dist(root, "ftx-missigned", "missigned", "ftx_missigned_mod", MISSIGNED)
    make_dist(root, "ftx-typo", "typo", "ftx_typo_mod", TYPO)
    monkeypatch.syspath_prepend(str(root))
    return root


def by_name(plugins):
    return {p.name: p for p in plugins}


def test_discovery_lists_each_plugin_with_status(fake_plugins):
    found = by_name(discover())
    assert found["good"].ok and found["good"].distribution == "ftx-good"
    assert found["good"].hooks == ["method_options", "select_trainable"]
    assert "RuntimeError: boom at import" in found["broken"].status
    assert "surprise" in found["missigned"].status and "missigned" in found["missigned"].status
    assert "select_trainables" in found["typo"].status
    assert "did you mean 'select_trainable'" in found["typo"].status
    # The built-in plugins are unaffected by the broken ones.
    for name in ("fft", "sft", "qlora"):
        assert found[name].ok, found[name].status


def test_strict_mode_reraises(fake_plugins, monkeypatch):
    monkeypatch.setenv("FTX_STRICT_PLUGINS", "1")
    # The first broken plugin met (entry-point order) raises its own error.
    with pytest.raises((RuntimeError, ValueError), match=r"boom|surprise|select_trainables"):
        discover()


def test_selection_registers_only_the_chosen_plugin(fake_plugins):
    pm = manager_for(get_plugin("good"))
    names = {pm.get_name(p) for p in pm.get_plugins()}
    assert names == {"core", "good"}
    result, who = call_first(pm, "select_trainable", run=None, model="m")
    assert (result, who) == ("selected-by-good", "good")
    # hook: method_options — the plugin's declaration is what the host sees.
    options, who = call_first(pm, "method_options")
    assert who == "good" and [o.name for o in options] == ["alpha"]
    # A hook the plugin does not implement falls through to the core default.
    assert [i.plugin_name for i in pm.hook.load_model.get_hookimpls()] == ["core"]


def test_unknown_plugin_names_installed_and_pip_hint(fake_plugins):
    with pytest.raises(BadInput) as err:
        get_plugin("qlra")
    assert "did you mean 'qlora'" in err.value.message
    assert "fft" in err.value.message and "good" in err.value.message
    assert err.value.hint == "`ftx plugins` lists what is installed"  # never `pip install` a typo


def test_unknown_plugin_pip_hint_only_for_published_distributions():
    with pytest.raises(BadInput) as err:
        get_plugin("kto", [], kind="objective")  # ftx publishes it; here nothing is installed
    assert err.value.hint == "pip install ftx-preference"
    with pytest.raises(BadInput) as err:
        get_plugin("galore", [])  # nobody's we know: no guessed package name to install
    assert "pip install" not in err.value.hint and "did you mean" not in err.value.message


def test_broken_plugin_selected_is_bad_input(fake_plugins):
    with pytest.raises(BadInput, match="failed to load"):
        get_plugin("broken")


def test_a_name_two_distributions_claim_is_chosen_by_neither(tmp_path, monkeypatch, ftx_cli):
    """An impostor named like a built-in method (or an objective) must not silently stand in
    for it, whichever entry point the installation happens to list first."""
    root = tmp_path / "site"
    make_dist(root, "ftx-impostor", "sft", "ftx_impostor_mod", GOOD)
    make_dist(root, "ftx-cross", "dpo", "ftx_cross_mod", GOOD)  # a method named like an objective
    monkeypatch.syspath_prepend(str(root))
    found = by_name(discover())
    for name, claimants in (
        ("sft", ("ftx-impostor", "ftx-sft")),
        ("dpo", ("ftx-cross", "ftx-preference")),
    ):
        assert not found[name].ok
        assert found[name].status.startswith(f"duplicate plugin name '{name}'")
        assert all(f"from {dist} (" in found[name].status for dist in claimants), found[name]
    with pytest.raises(BadInput, match="cannot be chosen") as err:
        get_plugin("sft")
    assert "pip uninstall" in err.value.hint
    with pytest.raises(BadInput, match="cannot be chosen"):
        get_plugin("dpo", kind="objective")
    r = ftx_cli("run", "--plugin", "sft", "--set", "train.max_steps=1")
    assert r.exit_code == 2 and "ftx-impostor" in r.stderr and "ftx-sft" in r.stderr
    rows = {row["name"]: row for row in json.loads(ftx_cli("plugins", "--json").stdout)}
    assert rows["sft"]["status"].startswith("duplicate plugin name 'sft'")
    assert rows["fft"]["status"] == "ok"


DEFAULTS_RAISE = """
from ftx import hookimpl

@hookimpl
def train_defaults(device, objective):
    raise ValueError("defaults exploded")
"""
DEFAULTS_LIST = """
from ftx import hookimpl

@hookimpl
def train_defaults(device, objective):
    return [("learning_rate", 1e-4)]
"""


@pytest.mark.parametrize(
    ("source", "words"),
    [
        (DEFAULTS_RAISE, "plugin 'bad': hook train_defaults failed: ValueError: defaults exploded"),
        (DEFAULTS_LIST, "plugin 'bad': hook train_defaults returned list, not a dict"),
    ],
    ids=["raises", "wrong-type"],
)
def test_a_broken_train_defaults_names_plugin_and_hook(
    source, words, tmp_path, monkeypatch, ftx_cli, ftx_tiny_model, ftx_tiny_data
):
    """Met while the run is prepared, before any model loads: one message, exit 2."""
    module = f"ftx_bad_{len(source)}_mod"  # one module name per case: sys.modules keeps the first
    source = GOOD + source.replace("from ftx import hookimpl", "")
    message = _refused_run(
        tmp_path, monkeypatch, ftx_cli, ftx_tiny_model, ftx_tiny_data, module, source
    )
    assert words in message


def _refused_run(tmp_path, monkeypatch, ftx_cli, model, data, module: str, source: str) -> str:
    """``ftx run --plugin bad`` with plugin ``bad`` made of ``source``: it must exit 2 with
    one message and no traceback, leaving no run directory; the message, whitespace folded."""
    root = tmp_path / "site"
    make_dist(root, "ftx-bad", "bad", module, source)
    monkeypatch.syspath_prepend(str(root))
    out = tmp_path / "run"
    r = ftx_cli(
        "run", "--plugin", "bad", "--model", model, "--data", data["train"], "--output", out,
        "--set", "train.max_steps=1",
    )  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and not out.exists()
    return " ".join(r.stderr.split())


OPTIONS_SOURCE = """
from ftx import hookimpl
from ftx.options import Option

@hookimpl
def method_options():
    return [{declared}]
"""


@pytest.mark.parametrize(
    ("declared", "words"),
    [
        ('Option("level", "int", "high", "h")', "default 'high' is not an int"),
        (
            'Option("mode", "str", "zzz", "m", choices=("a", "b"))',
            "default 'zzz' is not one of its choices ('a', 'b')",
        ),
        ('Option("blocks", "int", 2, "b"), Option("blocks", "int", 3, "b")', "'blocks' twice"),
        ('"r=8"', "returned str 'r=8', not an ftx.options.Option"),
    ],
    ids=["type", "choices", "twice", "not-an-option"],
)
def test_a_broken_option_declaration_names_plugin_hook_and_option(
    declared, words, tmp_path, monkeypatch, ftx_cli, ftx_tiny_model, ftx_tiny_data
):
    """A declaration's mistake is the plugin's, said once, before anything runs (a default
    of the wrong type or outside its choices was written into config.yaml and used)."""
    module = f"ftx_opts_{abs(hash(declared))}_mod"
    source = OPTIONS_SOURCE.replace("{declared}", declared)
    message = _refused_run(
        tmp_path, monkeypatch, ftx_cli, ftx_tiny_model, ftx_tiny_data, module, source
    )
    assert "plugin 'bad': hook method_options" in message and words in message, message


def test_plugins_json_cli(fake_plugins, ftx_cli):
    result = ftx_cli("plugins", "--json")
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    for name in ("fft", "sft", "qlora"):
        assert rows[name]["status"] == "ok"
        assert rows[name]["distribution"] == f"ftx-{name}"
        assert rows[name]["version"]
    assert rows["broken"]["status"] != "ok"


def test_plugins_table_and_show(fake_plugins, ftx_cli):
    result = ftx_cli("plugins")
    assert result.exit_code == 0 and "qlora" in result.stdout and "boom" in result.stdout
    shown = ftx_cli("plugins", "show", "qlora")
    assert shown.exit_code == 0
    assert "lora_alpha" in shown.stdout and "auto" in shown.stdout
    as_json = json.loads(ftx_cli("plugins", "show", "sft", "--json").stdout)
    assert {o["name"] for o in as_json["options"]} == {"layers", "modules", "extra"}
    assert ftx_cli("plugins", "show", "nope").exit_code == 2
    typo = ftx_cli("plugins", "show", "dpx")  # show takes objectives and rewards too
    message = " ".join(typo.stderr.split())
    assert typo.exit_code == 2 and "(did you mean 'dpo'?)" in message
    assert "objectives dpo" in message and "rewards exact" in message


@pytest.mark.parametrize("name", ["fft", "sft", "qlora"])
def test_plugins_show_states_the_training_defaults_and_their_evidence(name, ftx_cli):
    """`ftx plugins show METHOD` prints the learning rate the method sets for a supervised run
    (its train_defaults hook) and the evidence behind it (the hook's docstring)."""
    import importlib

    shown = json.loads(ftx_cli("plugins", "show", name, "--json").stdout)["train_defaults"]
    rates = importlib.import_module(f"ftx_{name}").LEARNING_RATES
    assert shown["objective"] == "supervised"
    assert shown["on_cpu"]["learning_rate"] == rates["supervised"]
    assert "multi-turn" in shown["why"] and "demo" in shown["why"]
    table = ftx_cli("plugins", "show", name).stdout
    assert "training defaults (supervised" in table and "learning_rate=" in table


def test_plugins_show_an_objectives_own_training_defaults(ftx_cli):
    shown = json.loads(ftx_cli("plugins", "show", "dpo", "--json").stdout)["train_defaults"]
    assert shown["objective"] == "dpo" and shown["on_cpu"]["learning_rate"] > 0
