"""SFT layer selection: every selector form, module globs, extras, dtypes, bad selections."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from ftx.context import DeviceInfo
from ftx.errors import BadInput
from ftx_sft.selection import apply_selection, parse_layers


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("auto", [22, 23, 24, 25, 26, 27, 28, 29]),
        ("last:2", [28, 29]),
        ("first:3", [0, 1, 2]),
        ("10-12", [10, 11, 12]),
        ("3,5,7", [3, 5, 7]),
        ([1, "10-11", "last:1"], [1, 10, 11, 29]),
        (4, [4]),
        ("-1", [29]),
    ],
)
def test_layer_selectors(spec, expected):
    assert parse_layers(spec, 30) == expected


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("30", "index 30 is out of range; this model has 30 decoder blocks (0-29)"),
        ("last:31", "needs N between 1 and 30"),
        ("12-10", "backwards"),
        ("top:3", "is not last:N, first:N, A-B or an index"),
    ],
)
def test_bad_layer_selectors_name_option_value_and_range(spec, needle):
    with pytest.raises(BadInput) as err:
        parse_layers(spec, 30)
    assert err.value.message.startswith("method.layers") and needle in err.value.message


def fake_run(layers="auto", modules=None, extra=(), bf16=False, device=None, dtype="float32"):
    return SimpleNamespace(
        options={"layers": layers, "modules": modules, "extra": list(extra)},
        train_args={"bf16": bf16},
        log=lambda msg: None,
        device=device or DeviceInfo(kind="cpu", bf16=bf16, count=0, name="CPU"),
        dtype=dtype,
    )


def test_partial_tuning_on_a_gpu_keeps_fp32_masters_and_half_frozen_weights(ftx_tiny_model):
    """fp32 master weights where updates land, the frozen rest in the autocast dtype (a fake
    A100: the casts are what would happen on it); on the CPU everything stays fp32."""
    import torch

    a100 = DeviceInfo(kind="cuda", bf16=True, count=1, name="A100")
    model = apply_selection(fake_run("last:1", bf16=True, device=a100), load(ftx_tiny_model))
    dtypes = {p.dtype for p in model.parameters() if p.requires_grad}
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    assert dtypes == {torch.float32} and frozen == {torch.bfloat16}
    model = apply_selection(fake_run("last:1", bf16=True), load(ftx_tiny_model))
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def load(path, dtype="float32"):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype))


def trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_modules_glob_and_extras(ftx_tiny_model):
    model = apply_selection(fake_run("last:1", modules=["mlp.*"]), load(ftx_tiny_model))
    assert trainable(model) == {
        "model.layers.1.mlp.gate_proj.weight",
        "model.layers.1.mlp.up_proj.weight",
        "model.layers.1.mlp.down_proj.weight",
    }
    model = apply_selection(fake_run("0", extra=["norm", "lm_head"]), load(ftx_tiny_model))
    names = trainable(model)
    assert "model.norm.weight" in names and "model.layers.0.self_attn.q_proj.weight" in names
    # lm_head is tied to embed_tokens in this model: training one trains both (one tensor).
    assert "model.embed_tokens.weight" in names
    assert not any(".layers.1." in n for n in names)


def test_pattern_matching_nothing_is_bad_input(ftx_tiny_model):
    with pytest.raises(BadInput, match=r"method.modules: 'attention.\*' matches no parameter"):
        apply_selection(fake_run("last:1", modules=["attention.*"]), load(ftx_tiny_model))
    with pytest.raises(BadInput, match=r"method\.extra"):
        apply_selection(fake_run("last:1", extra=["head"]), load(ftx_tiny_model))


def test_bf16_checkpoint_trains_with_and_without_autocast(ftx_tiny_model):
    import torch

    # With autocast the trained block gets fp32 master weights; frozen ones stay bf16.
    model = apply_selection(fake_run("last:1", bf16=True), load(ftx_tiny_model, "bfloat16"))
    dtypes = {p.dtype for n, p in model.named_parameters() if p.requires_grad}
    assert dtypes == {torch.float32}
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    # Without autocast the model keeps one dtype, so the matmuls still agree.
    model = apply_selection(fake_run("last:1"), load(ftx_tiny_model, "bfloat16"))
    model(input_ids=ids, labels=ids).loss.backward()
    assert all(p.grad is None for n, p in model.named_parameters() if not p.requires_grad)


def test_bad_selection_leaves_disk_untouched(ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path):
    out = tmp_path / "run"
    base = [
        "run",
        "--plugin",
        "sft",
        "--model",
        ftx_tiny_model,
        "--data",
        ftx_tiny_data["train"],
        "--output",
        out,
    ]
    r = ftx_cli(*base, "--set", "method.layers=5")
    assert r.exit_code == 2 and "method.layers: index 5 is out of range" in r.stderr
    assert "(0-1)" in r.stderr and not out.exists()
    # Refused by prepare (the plugin's estimate judges its options against the model's
    # config): nothing loaded, no banner, no base-model scoring.
    r = ftx_cli(*base, "--set", "method.layers=lats:1")
    assert r.exit_code == 2 and "method.layers: 'lats:1' is not last:N" in r.stderr
    assert "ftx sft" not in r.stdout and "scoring" not in r.stdout and not out.exists()
    # An existing run replaced with --overwrite is restored when the new one is bad input.
    assert ftx_cli(*base, "--set", "train.max_steps=2", "--set", "method.layers=1").exit_code == 0
    before = json.loads((out / "summary.json").read_text())
    r = ftx_cli(*base, "--overwrite", "--set", "method.layers=7")
    assert r.exit_code == 2
    assert json.loads((out / "summary.json").read_text()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".replaced-")]
