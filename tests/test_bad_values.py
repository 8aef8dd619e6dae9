"""Bad values that used to reach the trainer (issue 17): each is now exit 2 from ``ftx run``,
one message naming the key, the value, the valid range and the fix, found while the config is
resolved — before any model is loaded — and nothing is written."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from ftx.context import DeviceInfo

CPU = DeviceInfo(kind="cpu", bf16=True, count=0, name="CPU")


@pytest.fixture
def run_ftx(ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path, monkeypatch, no_model_loading):
    """``run_ftx(plugin, *sets, model=…)`` -> (click result, output dir), on a CPU, with model
    loading replaced by a failure: a bad value must be refused before it."""
    import ftx.device

    monkeypatch.setattr(ftx.device, "detect", lambda: CPU)
    out = tmp_path / "run"

    def invoke(plugin, *sets, model=ftx_tiny_model):
        args = ["run", "--plugin", plugin, "--model", model, "--data", ftx_tiny_data["train"]]
        args += ["--output", out]
        for expr in sets:
            args += ["--set", expr]
        return ftx_cli(*args), out

    return invoke


def assert_refused(result, out, *needles):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.count("error:") == 1
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert not out.exists()


RANGE_CASES = [
    ("fft", "train.learning_rate=-1e-4", "train.learning_rate: -0.0001", ">= 0"),
    ("fft", "train.per_device_train_batch_size=0", "per_device_train_batch_size: 0", ">= 1"),
    ("sft", "train.gradient_accumulation_steps=0", "gradient_accumulation_steps: 0", ">= 1"),
    ("qlora", "method.r=0", "method.r: 0", ">= 1"),
    ("fft", "train.max_steps=0", "train.max_steps: 0", "-1 or >= 1"),
    ("fft", "train.max_steps=-5", "train.max_steps: -5", "-1 or >= 1"),
    ("fft", "train.num_train_epochs=0", "train.num_train_epochs: 0.0", "> 0"),
]


@pytest.mark.parametrize(("plugin", "expr", "key_and_value", "valid"), RANGE_CASES)
def test_values_outside_their_range(run_ftx, plugin, expr, key_and_value, valid):
    result, out = run_ftx(plugin, expr)
    assert_refused(result, out, key_and_value, f"valid: {valid}", "hint:")


def test_fp16_alone_on_the_cpu(run_ftx):
    result, out = run_ftx("fft", "train.fp16=true")
    assert_refused(result, out, "train.fp16=true", "needs a GPU", "hint:")
    assert "both true" not in result.stderr  # the automatic bf16 gave way to the explicit fp16


@pytest.mark.parametrize(
    ("tracker", "modules", "package"),
    [
        ("tensorboard", ("tensorboard", "tensorboardX"), "'ftx-core[tensorboard]'"),
        ("wandb", ("wandb",), "'ftx-core[wandb]'"),
        ("mlflow", ("mlflow",), "'ftx-core[mlflow]'"),
        ("trackio", ("trackio",), "'ftx-core[trackio]'"),
    ],
)
def test_tracker_without_its_package(run_ftx, tracker, modules, package, monkeypatch):
    """Refused in prepare with the pip install of its extra (installed or not here: the check
    is made to see the package missing)."""
    import ftx.config.checks

    real = ftx.config.checks._module_exists
    monkeypatch.setattr(ftx.config.checks, "_module_exists", lambda m: m not in modules and real(m))
    result, out = run_ftx("fft", f"train.report_to={tracker}")
    assert_refused(result, out, f"train.report_to: '{tracker}'", f"pip install {package}")


def test_model_directory_without_tokenizer_files(run_ftx, ftx_tiny_model, tmp_path):
    model = tmp_path / "no-tokenizer"
    model.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(ftx_tiny_model / name, model / name)
    result, out = run_ftx("fft", model=model)
    assert_refused(result, out, str(model), "no tokenizer files", "tokenizer.json")


def test_missing_eval_file_names_data_eval(run_ftx, tmp_path):
    result, out = run_ftx("fft", f"data.eval={tmp_path / 'held-out.jsonl'}")
    assert_refused(result, out, "data.eval:", "held-out.jsonl", "--set data.eval=")


def test_trainer_rejection_names_the_keys(run_ftx):
    result, out = run_ftx("fft", "train.save_strategy=sometimes")
    assert_refused(result, out, "train.save_strategy='sometimes'", "the trainer rejects")


def test_refused_without_traceback_in_a_real_process(ftx_tiny_model, ftx_tiny_data, tmp_path):
    out = tmp_path / "run"
    args = ["--plugin", "fft", "--model", ftx_tiny_model, "--data", ftx_tiny_data["train"]]
    args += ["--output", out, "--set", "train.max_steps=-5"]
    proc = subprocess.run(
        [sys.executable, "-m", "ftx.cli", "run", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "train.max_steps: -5" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_data_check_exits_2_when_every_row_would_be_dropped(ftx_cli, ftx_tiny_model, ftx_tiny_data):
    path = ftx_tiny_data["train"]
    result = ftx_cli("data", "check", path, "--model", ftx_tiny_model, "--max-length", "8")
    assert result.exit_code == 2, result.output
    assert "every row would be dropped" in result.stderr and "--max-length" in result.stderr
    assert "tokens trained" in result.stdout  # the report comes first
    assert ftx_cli("data", "check", path, "--model", ftx_tiny_model).exit_code == 0
