"""Every method on every architecture of ``ftx.testing.tiny.ARCHITECTURES`` (tied and untied
embeddings): the generic block/linear/norm finders, one method per architecture for two steps
through the real ``ftx run`` (fast tier), and the full architecture x method matrix with
held-out scoring, ``ftx generate``, ``ftx eval`` and a plain ``from_pretrained`` of ``model/``
(slow tier)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ftx.testing.tiny import ARCHITECTURES, tiny_config

METHODS = ("fft", "sft", "qlora")
FAST = {arch: METHODS[i % len(METHODS)] for i, arch in enumerate(ARCHITECTURES)}
"""One method per architecture, rotating, so each method meets several architectures and both
tied and untied embeddings."""


def invoke(*args: object):
    from click.testing import CliRunner

    from ftx.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def run_args(plugin: str, model: Path, data: dict, out: Path, *sets: str) -> list[object]:
    """``ftx run`` for two steps, with ``--set`` for each of ``sets``."""
    settings = [
        "train.max_steps=2",
        "train.logging_steps=1",
        "train.learning_rate=5e-3",
        "train.warmup_steps=0",
        "train.per_device_train_batch_size=4",
        *sets,
    ]
    args = ["run", "--plugin", plugin, "--model", model, "--data", data["train"], "--output", out]
    return args + [x for s in settings for x in ("--set", s)]


def run(plugin: str, model: Path, data: dict, out: Path, *sets: str) -> dict:
    """Run ``ftx run`` (exit 0 asserted); return its summary."""
    result = invoke(*run_args(plugin, model, data, out, *sets))
    assert result.exit_code == 0, f"{plugin} on {model}:\n{result.output}\n{result.exception!r}"
    return json.loads((out / "summary.json").read_text())


def expected_attention(model: Path) -> str:
    from ftx.device import choose_attention, detect

    config = json.loads((model / "config.json").read_text())
    return choose_attention("auto", detect(), config)


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_blocks_linears_and_final_norm_are_found(architecture):
    """``ftx.layers`` names the parts of every architecture, GPT-2's Conv1D layers included."""
    import torch
    from transformers import AutoModelForCausalLM

    from ftx.layers import block_index, decoder_blocks, linear_module_names, outer_norm_parameters

    model = AutoModelForCausalLM.from_config(tiny_config(architecture))
    prefix, blocks = decoder_blocks(model)
    assert len(blocks) == 2
    linears = linear_module_names(model)
    assert linears and ({"c_attn", "c_fc", "c_proj"} <= set(linears)) == (architecture == "gpt2")
    norms = outer_norm_parameters(model)
    assert norms and all(block_index(name, prefix) is None for name in norms)
    assert all(isinstance(p, torch.nn.Parameter) for p in norms.values())


@pytest.mark.parametrize(("architecture", "plugin"), FAST.items(), ids=list(FAST))
def test_one_method_per_architecture(
    architecture, plugin, tiny_arch_model, ftx_tiny_data, tmp_path
):
    model = tiny_arch_model(architecture)
    summary = run(plugin, model, ftx_tiny_data, tmp_path / "run")
    assert summary["status"] == "finished"
    assert summary["attn_implementation"] == expected_attention(model)
    if architecture == "gemma2":  # transformers refuses SDPA for it
        assert summary["attn_implementation"] in ("eager", "flash_attention_2")


def test_explicit_unsupported_attention_is_bad_input(tiny_arch_model, ftx_tiny_data, tmp_path):
    out = tmp_path / "run"
    model = tiny_arch_model("gemma2")
    result = invoke(*run_args("fft", model, ftx_tiny_data, out, "model.attn_implementation=sdpa"))
    assert result.exit_code == 2, result.output
    assert "model.attn_implementation=sdpa" in result.output and "gemma2" in result.output
    assert not out.exists()


def state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("plugin", METHODS)
@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_matrix(architecture, plugin, tiny_arch_model, ftx_tiny_data, tmp_path):
    """Train, score before/after, generate, evaluate and reload ``model/`` plainly."""
    import torch
    from transformers import AutoModelForCausalLM

    base_dir = tiny_arch_model(architecture)
    out = tmp_path / "run"
    summary = run(
        plugin,
        base_dir,
        ftx_tiny_data,
        out,
        f"data.eval={ftx_tiny_data['eval']}",
        "data.eval_max_new_tokens=4",
        *(["method.extra=[norm]"] if plugin == "sft" else []),
    )
    assert summary["status"] == "finished"
    assert summary["attn_implementation"] == expected_attention(base_dir)
    assert {"eval_before", "eval_after"} <= set(summary)
    assert (out / "adapter").is_dir() == (plugin == "qlora")

    base = AutoModelForCausalLM.from_pretrained(base_dir)
    tuned, info = AutoModelForCausalLM.from_pretrained(out / "model", output_loading_info=True)
    assert not any(info.values()), info  # no missing, unexpected or mismatched weights
    assert type(tuned) is type(base)
    assert tuned.config.tie_word_embeddings == ARCHITECTURES[architecture].tied
    before, after = state(base), state(tuned)
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "training changed no weight of model/"
    if plugin == "sft":  # layers auto on two blocks: the last one trains, and the final norm
        from ftx.layers import block_index, decoder_blocks, outer_norm_parameters

        prefix, _ = decoder_blocks(base)
        assert {block_index(k, prefix) for k in changed} == {1, None}
        assert {k for k in changed if block_index(k, prefix) is None} == set(
            outer_norm_parameters(base)
        )

    generated = tmp_path / "generated.jsonl"
    result = invoke(
        "generate", out, "--data", ftx_tiny_data["eval"], "--out", generated, "--max-new-tokens", 4
    )
    assert result.exit_code == 0, result.output
    rows = generated.read_text().splitlines()
    assert len(rows) == len(ftx_tiny_data["eval"].read_text().splitlines())

    result = invoke("eval", out, "--data", ftx_tiny_data["eval"], "--metric", "loss")
    assert result.exit_code == 0, result.output
    scored = json.loads(result.stdout)
    assert scored["n"] == len(rows) and math.isfinite(scored["score"])
