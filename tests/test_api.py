"""The Python API (``ftx.run``, ``ftx.compare``, ``ftx.plan``, ``ftx.data.check``): the CLI's
engine from Python, on tiny random models."""

from __future__ import annotations

import json
import pkgutil
import signal

import pytest

import ftx
from ftx.errors import BadInput, RunInterrupted

STEPS = 6
TRAIN = {
    "max_steps": STEPS,
    "logging_steps": 1,
    "learning_rate": 5e-3,
    "save_steps": 100,
    "per_device_train_batch_size": 4,
}


def test_no_module_shadows_an_api_function():
    """``import ftx.plan`` (a module) would replace the function ``ftx.plan``: there is none."""
    import importlib

    modules = {m.name for m in pkgutil.iter_modules(ftx.__path__)}
    assert not modules & {"run", "compare", "plan"}
    data_modules = {m.name for m in pkgutil.iter_modules(ftx.data.__path__)}
    assert "check" not in data_modules
    for name in ("comparison", "estimates", "planner", "runner", "commands.plan", "cli"):
        importlib.import_module(f"ftx.{name}")

    assert ftx.run.__module__ == ftx.plan.__module__ == ftx.compare.__module__ == "ftx.api"
    assert callable(ftx.data.check)


@pytest.mark.parametrize(
    ("kwargs", "cli"),
    [
        ({"train": {"max_stepz": 3}}, ["--set", "train.max_stepz=3"]),
        ({"train": {"learning_rate": -1.0}}, ["--set", "train.learning_rate=-1.0"]),
        ({"method": {"r": 0}}, ["--set", "method.r=0"]),
    ],
)
def test_bad_input_raises_the_message_and_hint_the_cli_prints(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path, kwargs, cli
):
    out = tmp_path / "run"
    with pytest.raises(BadInput) as caught:
        ftx.run("qlora", model=ftx_tiny_model, data=ftx_tiny_data["train"], output=out, **kwargs)
    args = ["--plugin", "qlora", "--model", ftx_tiny_model, "--data", ftx_tiny_data["train"]]
    printed = ftx_cli("run", *args, "--output", out, *cli)
    assert printed.exit_code == 2
    assert caught.value.message in " ".join(printed.stderr.split())
    if caught.value.hint:
        assert caught.value.hint.split()[0] in printed.stderr
    assert not out.exists()  # nothing written


def test_bad_arguments_and_unknown_plugin_are_bad_input(tmp_path):
    with pytest.raises(BadInput, match="expected a dict of train settings"):
        ftx.run("fft", train=["max_steps=3"], output=tmp_path / "x")
    with pytest.raises(BadInput, match="nosuch"):
        ftx.run("nosuch", output=tmp_path / "y")
    with pytest.raises(BadInput, match="give distinct plugin names"):
        ftx.compare(["fft", "fft"], output=tmp_path / "z")
    assert not list(tmp_path.iterdir())


def test_interrupt_then_resume_through_the_api(
    ftx_tiny_model, ftx_tiny_data, ftx_signal_at_step, monkeypatch, tmp_path
):
    """A SIGINT (the notebook's interrupt button) saves a checkpoint and raises
    RunInterrupted carrying the result; ``resume=True`` finishes the run; the result object
    reads it back and uses the trained model as ``ftx eval``/``chat`` do."""
    out = tmp_path / "run"
    ftx_signal_at_step(3, signal.SIGINT)
    run = dict(model=ftx_tiny_model, data=ftx_tiny_data["train"], output=out, train=TRAIN)
    run["data"] = {"path": ftx_tiny_data["train"], "eval": ftx_tiny_data["eval"]}
    with pytest.raises(RunInterrupted, match="resume=True") as caught:
        ftx.run("fft", **run)
    stopped = caught.value.result
    assert stopped.status == "interrupted" and stopped.summary["steps"] == 3
    assert stopped.model_dir is None
    assert [row["step"] for row in stopped.loss_history] == [1, 2, 3]

    monkeypatch.undo()  # no more interruptions
    with pytest.raises(BadInput, match=r"cannot change train\.max_steps"):
        ftx.run(output=out, resume=True, train={"max_steps": STEPS + 1})
    result = ftx.run(output=out, resume=True)
    assert result.status == "finished" and result.summary["steps"] == STEPS
    assert [row["step"] for row in result.loss_history] == list(range(1, STEPS + 1))
    assert result.model_dir == out / "model" and result.adapter_dir is None
    assert result.eval_before["n"] == result.eval_after["n"] == 6
    assert result.summary["omp_wait_policy"]  # what was in force, recorded
    # The result's eval is ftx eval's: the same score as the run's own held-out scoring.
    again = result.eval(ftx_tiny_data["eval"])
    assert again["score"] == result.eval_after["score"] and again["n"] == 6
    rows = result.generate(ftx_tiny_data["eval"], limit=2, max_new_tokens=4)
    assert len(rows) == 2 and all(isinstance(r["output"], str) for r in rows)
    assert isinstance(result.chat("hello", max_new_tokens=4), str)
    exported = result.export("full", dtype="bf16")
    assert (exported / "config.json").is_file()
    assert "finished" in result._repr_markdown_()


def test_loss_frame_is_the_loss_history(ftx_tiny_model, ftx_tiny_data, tmp_path):
    pd = pytest.importorskip("pandas")
    train = {**TRAIN, "max_steps": 2}
    result = ftx.run(
        "sft",
        model=ftx_tiny_model,
        data={"path": ftx_tiny_data["train"], "eval_limit": 2},
        train=train,
        output=tmp_path / "run",
    )
    frame = result.loss_frame()
    assert isinstance(frame, pd.DataFrame) and list(frame.index) == [1, 2]
    assert frame["loss"].tolist() == [r["loss"] for r in result.loss_history]


def test_plan_and_data_check_return_what_the_cli_prints(ftx_cli, ftx_tiny_model, ftx_tiny_data):
    printed = ftx_cli("plan", "--model", ftx_tiny_model, "--gpu-mem", "16GB", "--json")
    planned = ftx.plan(ftx_tiny_model, gpu_mem="16GB")
    assert planned["recommendation"] == json.loads(printed.stdout)["recommendation"]
    assert [m["name"] for m in planned["methods"]] == [
        m["name"] for m in json.loads(printed.stdout)["methods"]
    ]
    path = ftx_tiny_data["train"]
    printed = ftx_cli("data", "check", path, "--model", ftx_tiny_model, "--json")
    assert ftx.data.check(path, model=ftx_tiny_model) == json.loads(printed.stdout)
    with pytest.raises(BadInput, match="not-there"):
        ftx.data.check("not-there.jsonl", model=ftx_tiny_model)
