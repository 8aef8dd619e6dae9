"""``ftx compare``'s ``--set`` routing: which setting reaches which plugin's run (no training)."""

from __future__ import annotations

import pytest

from ftx.comparison import route_sets, run_argv, run_requests
from ftx.errors import BadInput

DECLARED = {"fft": {"fsdp"}, "sft": {"layers"}, "qlora": {"r", "target_modules"}}


def test_unscoped_settings_go_to_every_run_and_method_keys_to_their_plugins():
    routed = route_sets(
        ["train.max_steps=3", "data.max_length=64", "model.dtype=float32", "method.r=8"],
        DECLARED,
    )
    shared = ["train.max_steps=3", "data.max_length=64", "model.dtype=float32"]
    assert routed == {"fft": shared, "sft": shared, "qlora": [*shared, "method.r=8"]}


def test_a_method_key_goes_to_every_plugin_that_declares_it():
    declared = {**DECLARED, "ia3": {"target_modules", "feedforward_modules"}}
    routed = route_sets(["method.target_modules=all-linear"], declared)
    assert routed == {
        "fft": [],
        "sft": [],
        "qlora": ["method.target_modules=all-linear"],
        "ia3": ["method.target_modules=all-linear"],
    }


def test_a_scoped_setting_goes_to_its_plugin_only():
    routed = route_sets(["qlora:method.r=4", "sft:train.learning_rate=1e-4"], DECLARED)
    assert routed == {
        "fft": [],
        "sft": ["sft:train.learning_rate=1e-4"],
        "qlora": ["qlora:method.r=4"],
    }


def test_a_method_key_nobody_declares_is_bad_input_naming_key_and_plugins():
    with pytest.raises(BadInput) as err:
        route_sets(["method.rank=8"], {"fft": {"fsdp"}, "qlora": {"r"}})
    assert "'rank'" in err.value.message and "fft, qlora" in err.value.message
    assert "fft:method.rank" in err.value.hint


def test_a_setting_scoped_to_a_plugin_not_compared_is_bad_input():
    with pytest.raises(BadInput) as err:
        route_sets(["qlor:method.r=8"], {"fft": set(), "qlora": {"r"}})
    assert "qlor" in err.value.message and "did you mean 'qlora'" in err.value.message


def test_run_requests_read_the_installed_plugins_options(tmp_path):
    reqs = run_requests(
        ["fft", "sft", "qlora"],
        tmp_path,
        ["train.max_steps=3", "method.layers=last:1", "qlora:method.r=8"],
        model="m",
        overwrite=True,
    )
    by_plugin = {r.plugin: r for r in reqs}
    assert by_plugin["fft"].sets == ["train.max_steps=3"]
    assert by_plugin["sft"].sets == ["train.max_steps=3", "method.layers=last:1"]
    assert by_plugin["qlora"].sets == ["train.max_steps=3", "qlora:method.r=8"]
    assert by_plugin["sft"].output == str(tmp_path / "sft") and by_plugin["sft"].model == "m"


def test_run_argv_is_the_same_request_to_ftx_run(tmp_path):
    from ftx.commands.run import run_cmd

    (req,) = run_requests(
        ["qlora"], tmp_path, ["qlora:method.r=8"], config_file="c.yaml", data="d", overwrite=True
    )
    params = run_cmd.make_context("run", run_argv(req)).params
    assert params["plugin"] == "qlora" and params["output"] == str(tmp_path / "qlora")
    assert params["config_file"] == "c.yaml" and params["data"] == "d" and params["model"] is None
    assert params["sets"] == ("qlora:method.r=8",) and params["overwrite"] is True


def test_compare_refuses_before_any_run_starts(ftx_cli, tmp_path):
    out = tmp_path / "cmp"
    r = ftx_cli("compare", "--plugins", "fft,sft", "--output", out, "--set", "method.r=8")
    assert r.exit_code == 2 and "method.r" in r.stderr and "PLUGIN:method.r" in r.stderr
    assert not out.exists()
    r = ftx_cli("compare", "--plugins", "fft,sft", "--output", out, "--set", "qlora:method.r=8")
    assert r.exit_code == 2 and "not compared" in r.stderr and not out.exists()
    r = ftx_cli("compare", "--plugins", "fft,nope", "--output", out)
    assert r.exit_code == 2 and "unknown plugin 'nope'" in r.stderr and not out.exists()


def test_run_and_compare_help_give_the_scoped_syntax(ftx_cli):
    for command in ("run", "compare"):
        text = " ".join(ftx_cli(command, "--help").stdout.split())
        assert "[PLUGIN:]SECTION.KEY=VALUE" in text and "qlora:method.r=8" in text


def _compare(ftx_cli, model, data, out, *extra):
    return ftx_cli(
        "compare", "--plugins", "fft,qlora", "--no-forgetting", "--model", model,
        "--data", data["train"], "--output", out, "--set", f"data.eval={data['eval']}", *extra,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("grid", "words"),
    [
        ("method.rank=8,32", "--grid method.rank: no compared plugin declares an option 'rank'"),
        ("train.learning_rate=abc,1e-3", "fft/learning_rate=abc: train.learning_rate: expected"),
        ("method.r=eight", "run qlora/r=eight: method.r: expected int, got 'eight'"),
        ("train.learning_rate=", "empty value"),
        ("train.learning_rate", "expected [PLUGIN:]section.key=v1,v2"),
        ("sft:method.layers=last:1", "plugin 'sft' is not compared"),
    ],
)
def test_bad_grids_exit_2_before_anything_runs(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path, grid, words
):
    out = tmp_path / "cmp"
    r = _compare(ftx_cli, ftx_tiny_model, ftx_tiny_data, out, "--grid", grid)
    assert r.exit_code == 2, r.output
    assert words in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_a_directory_of_another_compare_or_other_files_is_refused(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path
):
    import json

    from ftx.comparison import plan_cells

    out = tmp_path / "cmp"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    r = _compare(ftx_cli, ftx_tiny_model, ftx_tiny_data, out)
    assert r.exit_code == 2 and "holds no ftx compare" in r.stderr and "--overwrite" in r.stderr
    (out / "notes.txt").unlink()
    sets = [f"data.eval={ftx_tiny_data['eval']}"]
    _, spec = plan_cells(
        ["fft", "qlora"], sets, ["method.r=4,8"], model=str(ftx_tiny_model),
        data=str(ftx_tiny_data["train"]), forgetting=False,
    )  # fmt: skip
    (out / "compare.json").write_text(json.dumps(spec))
    (out / "fft").mkdir()
    r = _compare(ftx_cli, ftx_tiny_model, ftx_tiny_data, out, "--grid", "method.r=4,16")
    assert r.exit_code == 2 and "holds another compare" in r.stderr
    assert "method.r=4,8" in r.stderr and "method.r=4,16" in r.stderr
    assert json.loads((out / "compare.json").read_text()) == spec  # untouched
