"""End-to-end `ftx run` on a tiny random model, for each built-in plugin (fast tier)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

STEPS = 8


def run_args(plugin, model, data, out, *extra):
    return [
        "run",
        "--plugin",
        plugin,
        "--model",
        model,
        "--data",
        data["train"],
        "--output",
        out,
        "--set",
        f"train.max_steps={STEPS}",
        "--set",
        "train.logging_steps=1",
        "--set",
        "train.learning_rate=5e-3",
        "--set",
        "train.warmup_steps=0",
        "--set",
        "train.per_device_train_batch_size=4",
        "--set",
        "train.save_steps=4",
        "--set",
        f"data.eval={data['eval']}",
        "--set",
        "data.eval_max_new_tokens=8",
        *extra,
    ]


def losses(run_dir: Path) -> list[float]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "loss" in r]  # training lines (evaluations log eval_* lines)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    return [r["loss"] for r in rows]


def state_dict(path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, ftx_tiny_model, ftx_tiny_data):
    """One short run per plugin, shared by the assertions below."""
    from click.testing import CliRunner

    from ftx.cli import cli

    root = tmp_path_factory.mktemp("runs")
    out = {}
    extra = {
        "fft": ["--set", "data.packing=true"],
        "sft": ["--set", "method.layers=last:1"],
        "qlora": ["--set", "method.r=4"],
    }
    for plugin in ("fft", "sft", "qlora"):
        target = root / plugin
        result = CliRunner().invoke(
            cli,
            run_args(
                plugin, str(ftx_tiny_model), ftx_tiny_data, str(target), *extra.get(plugin, [])
            ),
        )
        assert result.exit_code == 0, result.output
        out[plugin] = target
    return out


@pytest.mark.parametrize("plugin", ["fft", "sft", "qlora"])
def test_run_directory_contract(runs, plugin):
    run = runs[plugin]
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "loss.png", "report.md"):
        assert (run / name).is_file(), name
    assert (run / "checkpoints").is_dir() and (run / "model" / "config.json").is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["plugin"] == plugin
    assert summary["steps"] == STEPS and summary["tokens"] > 0 and summary["tokens_per_s"] > 0
    assert 0 < summary["trainable_params"] <= summary["total_params"]
    assert summary["peak_memory_bytes"] > 0
    precision = summary["precision"]  # recorded: fp32 masters, bf16 autocast where the CPU has it
    assert precision["master_weights"] == "float32" and precision["loss_scaling"] is False
    assert precision["mode"] == ("mixed-bf16" if summary["bf16_autocast"] else "fp32")
    measured = summary["calibration"]  # the CPU's own measurement decided bf16 autocast
    assert measured["source"] in {"measured", "cached"} and measured["fp32_gflops"] > 0
    assert measured["bf16_autocast"] == summary["bf16_autocast"]
    assert {"eval_before", "eval_after"} <= set(summary)
    assert summary["versions"]["torch"] and summary["data_hashes"]["train"]
    assert set(summary["hooks"]) == {
        "load_model",
        "select_trainable",
        "training_arguments",
        "data_collator",
        "build_trainer",
        "trainer_ready",
        "export",
        "score_heldout",
    }
    assert summary["allocator"] and summary["omp_wait_policy"] and summary["training_attention"]
    # The saved config is complete and reusable as --config.
    import yaml

    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["plugin"] == plugin and saved["train"]["max_steps"] == STEPS


def test_cpu_runs_train_on_ftx_sdpa_and_export_plain_sdpa(runs):
    """CPU runs (padding-free fft, padded sft) train through ftx_sdpa; the exported model does
    not name it (plain transformers loads it with its default attention)."""
    from transformers import AutoModelForCausalLM

    summary = json.loads((runs["fft"] / "summary.json").read_text())
    assert summary["packing"] == "padding-free"
    assert summary["training_attention"] == "ftx_sdpa"
    assert "ftx_sdpa" not in (runs["fft"] / "model" / "config.json").read_text()
    model = AutoModelForCausalLM.from_pretrained(str(runs["fft"] / "model"))
    assert model.config._attn_implementation == "sdpa"
    padded = json.loads((runs["sft"] / "summary.json").read_text())
    assert padded["packing"] == "padded" and padded["training_attention"] == "ftx_sdpa"


@pytest.mark.parametrize("plugin", ["fft", "sft", "qlora"])
def test_loss_falls(runs, plugin):
    curve = losses(runs[plugin])
    assert all(x == x for x in curve)  # finite
    assert sum(curve[-3:]) / 3 < sum(curve[:3]) / 3


def test_fft_trains_every_weight(runs, ftx_tiny_model):
    # hook: select_trainable (core default: everything) and hook: export (core default)
    summary = json.loads((runs["fft"] / "summary.json").read_text())
    assert summary["trainable_params"] == summary["total_params"]
    assert summary["hooks"]["select_trainable"] == "core"
    assert summary["hooks"]["build_trainer"] == "supervised"  # hook: build_trainer
    assert summary["hooks"]["training_arguments"] == ["fft"]  # hook: training_arguments
    assert summary["engine"].startswith("single process")
    before, after = state_dict(ftx_tiny_model), state_dict(runs["fft"] / "model")
    for name, tensor in before.items():
        assert not (tensor == after[name]).all(), f"{name} did not change"


def test_sft_changes_only_selected_block(runs, ftx_tiny_model):
    summary = json.loads((runs["sft"] / "summary.json").read_text())
    assert summary["hooks"]["select_trainable"] == "sft"
    assert summary["hooks"]["load_model"] == "core"  # hook: load_model (core default)
    before, after = state_dict(ftx_tiny_model), state_dict(runs["sft"] / "model")
    for name, tensor in before.items():
        if ".layers.1." in name:
            assert not (tensor == after[name]).all(), f"selected {name} did not change"
        else:
            assert (tensor == after[name]).all(), f"frozen {name} changed"


def test_qlora_trains_only_adapters_and_exports_both(runs, ftx_tiny_model):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run = runs["qlora"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["hooks"]["load_model"] == "qlora" and summary["hooks"]["export"] == "qlora"
    assert summary["hooks"]["trainer_ready"] == ["qlora"]  # hook: trainer_ready
    assert summary["trainable_params"] < summary["total_params"] / 2
    assert (run / "adapter" / "adapter_config.json").is_file()
    base = AutoModelForCausalLM.from_pretrained(str(ftx_tiny_model))
    adapted = PeftModel.from_pretrained(base, str(run / "adapter"))
    merged = AutoModelForCausalLM.from_pretrained(str(run / "model"))
    import torch

    ids = torch.tensor([[1, 5, 9, 13, 20, 33]])
    with torch.no_grad():
        a = adapted(input_ids=ids).logits
        m = merged(input_ids=ids).logits
    assert torch.allclose(a, m, atol=1e-4)
    # The merge changed the model: it is not the base.
    fresh = AutoModelForCausalLM.from_pretrained(str(ftx_tiny_model))
    with torch.no_grad():
        assert not torch.allclose(fresh(input_ids=ids).logits, m, atol=1e-4)


def test_plugin_train_defaults_apply_unless_overridden(runs):
    # hook: train_defaults — qlora's learning rate is used when the user gives none.
    import yaml

    from ftx.context import DeviceInfo
    from ftx.plugins import call_first, get_plugin, manager_for

    pm = manager_for(get_plugin("qlora"))
    cpu = DeviceInfo("cpu", True, 0, "CPU")
    defaults, who = call_first(pm, "train_defaults", device=cpu, objective="supervised")
    assert who == "qlora" and defaults["learning_rate"] > 2e-5
    saved = yaml.safe_load((runs["qlora"] / "config.yaml").read_text())
    assert saved["train"]["learning_rate"] == 5e-3  # --set wins over the plugin default


def test_train_seed_fixes_the_adapter_initialisation(tmp_path, ftx_tiny_model, ftx_tiny_data):
    """LoRA's random initialisation happens in select_trainable, before the Trainer seeds:
    ftx seeds first, so the same train.seed gives the same adapter and another seed another
    (learning rate 0: the saved adapter is the initialisation)."""
    from click.testing import CliRunner
    from safetensors.torch import load_file

    from ftx.cli import cli

    def adapter(name, seed):
        out = tmp_path / name
        args = run_args("qlora", ftx_tiny_model, ftx_tiny_data, str(out))
        args += ["--set", "train.max_steps=1", "--set", "train.learning_rate=0"]
        args += ["--set", f"train.seed={seed}", "--set", "data.eval=null"]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        return load_file(str(out / "adapter" / "adapter_model.safetensors"))

    first, again, other = adapter("a", 7), adapter("b", 7), adapter("c", 8)
    lora_a = [k for k in first if "lora_A" in k]
    assert lora_a and first.keys() == again.keys() == other.keys()
    assert all(first[k].equal(again[k]) for k in first)
    assert not any(first[k].equal(other[k]) for k in lora_a)


def test_qlora_exports_the_adapter_of_the_best_checkpoint(runs):
    """The held-out split is evaluated at every save (steps 4 and 8); adapter/ is the adapter
    of the checkpoint summary.json names as best (a 4-bit base on the CPU reloads it)."""
    from safetensors.torch import load_file

    run = runs["qlora"]
    summary = json.loads((run / "summary.json").read_text())
    assert [p["step"] for p in summary["evaluation"]["validation_loss"]] == [4, 8]
    best = summary["best"]["step"]
    exported = load_file(str(run / "adapter" / "adapter_model.safetensors"))
    saved = load_file(str(run / "checkpoints" / f"checkpoint-{best}" / "adapter_model.safetensors"))
    assert exported.keys() == saved.keys()
    assert all((exported[k] == saved[k]).all() for k in exported)
