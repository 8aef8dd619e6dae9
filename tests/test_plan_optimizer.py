"""``train.optim`` in ``ftx plan``: the optimizer state it counts is the state the optimizer
really allocates, and ``--optim`` / ``--set train.optim`` reach every method's estimate."""

from __future__ import annotations

import json

import pytest

from ftx.estimates import optimizer_state_bytes

MEASURED = ["adamw_torch", "adamw_8bit", "sgd", "adagrad", "rmsprop", "lion_8bit", "lion_32bit"]


def _state_bytes(optim: str, tmp_path) -> tuple[int, int]:
    """(bytes of every tensor the ``optim`` optimizer holds after one step, trainable params),
    for two 512x512 matrices built as transformers' Trainer builds the optimizer."""
    import torch
    from transformers import Trainer, TrainingArguments

    model = torch.nn.Sequential(torch.nn.Linear(512, 512, bias=False), torch.nn.Linear(512, 512))
    args = TrainingArguments(output_dir=str(tmp_path), optim=optim, use_cpu=True, report_to=[])
    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    optimizer = cls(model.parameters(), **kwargs)
    model(torch.randn(4, 512)).sum().backward()
    optimizer.step()
    held = sum(
        value.numel() * value.element_size()
        for state in optimizer.state.values()
        for value in state.values()
        if torch.is_tensor(value) and value.numel() > 1
    )
    return held, sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("optim", MEASURED)
def test_counted_state_is_what_the_optimizer_allocates(optim, tmp_path):
    held, params = _state_bytes(optim, tmp_path)
    counted = optimizer_state_bytes(optim, params, 4)
    assert counted == pytest.approx(held, rel=0.05, abs=8 * 1024), (optim, held, counted)


def _optimizer_bytes(ftx_cli, model_dir, *args):
    out = ftx_cli("plan", "--model", str(model_dir), "--gpu-mem", "80GB", "--json", *args)
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    return {row["name"]: row["estimate"]["optimizer"] for row in doc["methods"] if row["estimate"]}


def test_optim_reaches_every_method_estimate(ftx_cli, llama7b_dir):
    default = _optimizer_bytes(ftx_cli, llama7b_dir)
    eight = _optimizer_bytes(ftx_cli, llama7b_dir, "--optim", "adamw_8bit")
    as_set = _optimizer_bytes(ftx_cli, llama7b_dir, "--set", "train.optim=adamw_8bit")
    assert eight == as_set
    for name in ("fft", "sft", "qlora"):  # AdamW (qlora: paged 32-bit on CUDA) -> 8-bit state
        assert eight[name] == default[name] // 4, name


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--optim", "adamw_8bt"], "did you mean 'adamw_8bit'"),
        (["--optim", "paged_adamw_8bit", "--device", "cpu"], "need a CUDA GPU"),
    ],
)
def test_bad_optim_is_bad_input(ftx_cli, llama7b_dir, args, named):
    out = ftx_cli("plan", "--model", str(llama7b_dir), *args)
    assert out.exit_code == 2
    assert named in out.output and "Traceback" not in out.output
