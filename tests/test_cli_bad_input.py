"""Bad input: exit 2, one clear message, no traceback, nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def base_args(ftx_tiny_model, ftx_tiny_data, tmp_path):
    out = tmp_path / "run"
    return out, [
        "--model",
        str(ftx_tiny_model),
        "--data",
        str(ftx_tiny_data["train"]),
        "--output",
        str(out),
    ]


CASES = [
    (
        ["--plugin", "qlra"],
        ["unknown plugin 'qlra'", "did you mean 'qlora'", "`ftx plugins` lists what is installed"],
    ),
    (["--plugin", "qlora", "--set", "train.learnig_rate=1e-4"], ["did you mean 'learning_rate'"]),
    (["--plugin", "qlora", "--set", "train.max_steps=ten"], ["train.max_steps: expected int"]),
    (["--plugin", "qlora", "--set", "method.lora_alfa=4"], ["did you mean 'lora_alpha'"]),
    (["--plugin", "qlora", "--set", "method.bits=3"], ["method.bits", "4, 8"]),
    (["--plugin", "sft", "--config", "/nonexistent/c.yaml"], ["config file not found"]),
]


@pytest.mark.parametrize(("args", "needles"), CASES)
def test_bad_input_exit_2_and_no_run_dir(ftx_cli, base_args, args, needles):
    out, common = base_args
    result = ftx_cli("run", *args, *common)
    assert result.exit_code == 2, result.output
    for needle in needles:
        assert needle in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_missing_data_and_model_paths(ftx_cli, ftx_tiny_model, tmp_path):
    out = tmp_path / "run"
    r = ftx_cli(
        "run",
        "--plugin",
        "fft",
        "--model",
        str(ftx_tiny_model),
        "--data",
        str(tmp_path / "nope.jsonl"),
        "--output",
        str(out),
    )
    assert r.exit_code == 2 and "nope.jsonl" in r.stderr and not out.exists()
    r = ftx_cli(
        "run", "--plugin", "fft", "--model", str(tmp_path / "no-model"), "--output", str(out)
    )
    assert r.exit_code == 2 and "no-model" in r.stderr and not out.exists()


def test_existing_output_is_never_clobbered(ftx_cli, base_args):
    out, common = base_args
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    r = ftx_cli("run", "--plugin", "fft", *common)
    assert r.exit_code == 2 and "already exists" in r.stderr and "--overwrite" in r.stderr
    assert (out / "precious.txt").read_text() == "keep me"


def test_bad_data_row_is_named_before_loading(ftx_cli, ftx_tiny_model, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"conversations": [{"from": "human", "value": "hi"}]}\n{not json}\n')
    out = tmp_path / "run"
    r = ftx_cli(
        "run",
        "--plugin",
        "fft",
        "--model",
        str(ftx_tiny_model),
        "--data",
        str(data),
        "--output",
        str(out),
    )
    assert r.exit_code == 2 and "bad.jsonl" in r.stderr and not out.exists()


def test_an_output_that_cannot_be_created_exits_2_before_loading(
    ftx_cli, base_args, tmp_path, no_model_loading
):
    _, common = base_args
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    cases = [(a_file / "run", f"{a_file} is a file, not a directory"), ("", "--output is empty")]
    if Path("/proc").is_dir():  # where nobody, not even root, can make a directory
        cases.append(("/proc/ftx-run", "no new directory can be made in /proc"))
    for output, needle in cases:
        r = ftx_cli("run", "--plugin", "sft", *common[:-1], output)
        assert r.exit_code == 2 and needle in r.stderr and "Traceback" not in r.output, r.output
    assert a_file.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # no run, no lock, no probe
    r = ftx_cli("compare", "--plugins", "sft,fft", *common[:-2], "--output", a_file / "cmp")
    assert r.exit_code == 2 and f"{a_file} is a file" in r.stderr


def test_a_model_directory_without_weights_exits_2_and_writes_nothing(
    ftx_cli, base_args, ftx_tiny_model, tmp_path
):
    out, common = base_args
    bare = tmp_path / "bare-model"
    shutil.copytree(ftx_tiny_model, bare, ignore=shutil.ignore_patterns("*.safetensors*"))
    r = ftx_cli("run", "--plugin", "sft", *common[:1], bare, *common[2:])
    assert r.exit_code == 2 and f"model directory {bare} has no weights" in r.stderr, r.output
    assert "save_pretrained" in r.stderr and not out.exists()


def test_a_file_given_as_model_or_a_directory_as_config_is_named(ftx_cli, base_args, tmp_path):
    out, common = base_args
    data_file = common[3]
    r = ftx_cli("run", "--plugin", "sft", "--model", data_file, *common[2:])
    assert r.exit_code == 2 and f"model {data_file} is a file, not a model directory" in r.stderr
    r = ftx_cli("run", "--plugin", "sft", *common, "--config", tmp_path)
    assert r.exit_code == 2 and f"config file {tmp_path} is a directory" in r.stderr
    assert not out.exists()
