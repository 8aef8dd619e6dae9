"""A fractional warm-up never costs a short run its only (or first) training step."""

from __future__ import annotations

import json

import pytest

from ftx.runner.training import whole_warmup_steps


@pytest.mark.parametrize(
    ("args", "rows", "expected"),
    [
        ({"warmup_steps": 0.05, "max_steps": 60}, 480, 3),
        ({"warmup_steps": 0.05, "max_steps": 10}, 480, 0),  # the Trainer would take 1
        ({"warmup_steps": 0.05, "max_steps": -1, "per_device_train_batch_size": 8}, 4, 0),
        ({"warmup_steps": 0.1, "num_train_epochs": 2, "per_device_train_batch_size": 8}, 400, 10),
        (
            {
                "warmup_steps": 0.1,
                "per_device_train_batch_size": 4,
                "gradient_accumulation_steps": 5,
            },
            400,
            2,
        ),
        ({"warmup_steps": 5, "max_steps": 60}, 480, None),  # already a step count
        ({"warmup_steps": 0}, 480, None),
    ],
)
def test_whole_warmup_steps(args, rows, expected):
    assert whole_warmup_steps(args, rows) == expected


def test_a_run_shorter_than_one_batch_trains_its_step(tmp_path, ftx_tiny_model, ftx_tiny_data):
    """Fewer rows than a batch with the default 5% warm-up: the Trainer's own rounding gave the
    only step a learning rate of 0, so the run 'finished' having trained nothing."""
    from click.testing import CliRunner

    from ftx.cli import cli

    rows = ftx_tiny_data["train"].read_text().splitlines()[:3]
    data = tmp_path / "three.jsonl"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    args = ["run", "--plugin", "sft", "--model", str(ftx_tiny_model), "--data", str(data)]
    args += ["--output", str(out), "--set", "train.per_device_train_batch_size=8"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output[-2000:]
    (step,) = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert step["step"] == 1 and step["learning_rate"] > 0
    assert json.loads((out / "summary.json").read_text())["warmup_steps"] == 0
