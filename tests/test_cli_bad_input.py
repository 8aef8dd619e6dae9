"""Bad input: exit 2, one clear message, no traceback, nothing written."""

from __future__ import annotations

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
