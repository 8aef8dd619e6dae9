"""FFT across processes: 2 CPU ranks (gloo, DDP) match 1 rank with the same global batch;
FSDP/DeepSpeed settings are translated for the Trainer and the engine that ran is reported."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from ftx.context import DeviceInfo
from ftx.testing.commands import run_argv


def ftx(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "ftx.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def common(model, data, out, batch):
    train = {"max_steps": 6, "logging_steps": 1, "learning_rate": 5e-3}
    train["per_device_train_batch_size"] = batch
    return run_argv(
        "fft",
        model=model,
        data=data["train"],
        output=out,
        train=train,
        sets=["method.fsdp=full_shard"],
    )


def test_two_ranks_match_one_rank(ftx_tiny_model, ftx_tiny_data, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = ftx(*common(ftx_tiny_model, ftx_tiny_data, one, 8))
    assert r1.returncode == 0, r1.stderr[-2000:]
    r2 = ftx(*common(ftx_tiny_model, ftx_tiny_data, two, 4), "--nproc", "2")
    assert r2.returncode == 0, r2.stderr[-2000:]
    # Only rank 0 speaks: each progress line once.
    assert r2.stderr.count("step     6/6") == 1

    def curve(run):
        return [json.loads(x)["loss"] for x in (run / "metrics.jsonl").read_text().splitlines()]

    assert curve(one) == pytest.approx(curve(two), rel=1e-3)
    summary = json.loads((two / "summary.json").read_text())
    assert summary["engine"].startswith("ddp × 2 on cpu")
    assert "FSDP 'full_shard auto_wrap' requested" in summary["engine"]

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(two / "model"))
    assert sum(p.numel() for p in model.parameters()) == summary["total_params"]
    assert len(list((two / "model").glob("*.safetensors"))) == 1


def fake_run(kind: str, fsdp: str = "full_shard", deepspeed=None):
    return SimpleNamespace(
        options={"fsdp": fsdp, "fsdp_offload": False, "deepspeed": deepspeed},
        device=DeviceInfo(kind=kind, bf16=True, count=2 if kind == "cuda" else 0, name=kind),
    )


def test_fsdp_settings_reach_the_trainer_on_gpus(monkeypatch, ftx_tiny_model):
    from transformers import AutoModelForCausalLM

    from ftx.engine import engine_arguments

    model = AutoModelForCausalLM.from_pretrained(str(ftx_tiny_model))
    monkeypatch.setenv("WORLD_SIZE", "4")
    args, engine = engine_arguments(fake_run("cuda"), model)
    assert args["fsdp"] == "full_shard auto_wrap"
    assert args["fsdp_config"]["transformer_layer_cls_to_wrap"] == ["LlamaDecoderLayer"]
    assert engine == "fsdp full_shard auto_wrap × 4 (wrap LlamaDecoderLayer)"
    # On the CPU the same request runs DDP, and says so.
    args, engine = engine_arguments(fake_run("cpu"), model)
    assert "fsdp" not in args and engine.startswith("ddp × 4 on cpu")


def test_deepspeed_config_passes_through(monkeypatch, ftx_tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM

    from ftx.engine import engine_arguments
    from ftx.errors import BadInput

    model = AutoModelForCausalLM.from_pretrained(str(ftx_tiny_model))
    config = tmp_path / "ds.json"
    config.write_text('{"zero_optimization": {"stage": 3}}')
    args, engine = engine_arguments(fake_run("cuda", deepspeed=str(config)), model)
    assert args == {"deepspeed": str(config)} and engine.startswith("deepspeed (ds.json)")
    with pytest.raises(BadInput, match="config file not found"):
        engine_arguments(fake_run("cuda", deepspeed=str(tmp_path / "nope.json")), model)


def test_torchrun_command_line():
    from ftx.launch import torchrun_command

    cmd = torchrun_command(2, ["run", "--plugin", "fft", "--nproc", "2"], output="runs/x")
    assert cmd[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert "--nproc_per_node=2" in cmd and "--nproc" not in cmd
    assert cmd[-2:] == ["--output", "runs/x"]


def test_one_process_fsdp_on_cuda_is_real(monkeypatch, ftx_tiny_model):
    """World size 1 on a GPU: the FSDP settings reach the Trainer (the run is relaunched under
    torchrun with one process so accelerate shards); on the CPU nothing is relaunched."""
    from transformers import AutoModelForCausalLM

    from ftx.engine import engine_arguments, needs_launcher
    from ftx.launch import torchrun_command

    model = AutoModelForCausalLM.from_pretrained(str(ftx_tiny_model))
    monkeypatch.setenv("WORLD_SIZE", "1")
    gpu = fake_run("cuda")
    args, engine = engine_arguments(gpu, model)
    assert args["fsdp"] == "full_shard auto_wrap" and engine.endswith(
        "× 1 (wrap LlamaDecoderLayer)"
    )
    assert needs_launcher(gpu.options, gpu.device)
    assert not needs_launcher(fake_run("cpu").options, fake_run("cpu").device)
    assert not needs_launcher({"fsdp": "off"}, gpu.device)
    cmd = torchrun_command(1, ["run", "--plugin", "fft"], output="runs/x")
    assert "--standalone" in cmd and "--nproc_per_node=1" in cmd


def test_fsdp_qlora_arguments_and_dtypes(monkeypatch, ftx_tiny_model):
    """FSDP + QLoRA: the core's FSDP settings (with CPU-RAM-efficient loading), 4-bit weights
    stored in bf16 beside bf16 parameters; refused on GPUs without bf16 and for 8-bit bases."""
    from transformers import AutoModelForCausalLM

    from ftx.engine import engine_arguments
    from ftx.errors import BadInput
    from ftx_qlora import OPTIONS
    from ftx_qlora.settings import check_fsdp_qlora, fsdp_qlora, quantization_settings

    options = {o.name: o.default for o in OPTIONS} | {"fsdp": "full_shard"}
    a100 = DeviceInfo(kind="cuda", bf16=True, count=1, name="A100")
    t4 = DeviceInfo(kind="cuda", bf16=False, count=1, name="T4")
    run = SimpleNamespace(options=options, device=a100)
    model = AutoModelForCausalLM.from_pretrained(str(ftx_tiny_model))
    monkeypatch.setenv("WORLD_SIZE", "2")
    args, engine = engine_arguments(run, model, quantized=True)
    assert args["fsdp"] == "full_shard auto_wrap" and "ddp_find_unused_parameters" not in args
    assert args["fsdp_config"]["cpu_ram_efficient_loading"] is True
    assert engine.startswith("fsdp full_shard auto_wrap × 2")
    assert fsdp_qlora(options, a100) and not fsdp_qlora(options, DeviceInfo("cpu", True, 0, "c"))
    assert quantization_settings(options, a100)["bnb_4bit_quant_storage"] == "bfloat16"
    check_fsdp_qlora(options, a100)
    with pytest.raises(BadInput, match="must be bfloat16"):
        check_fsdp_qlora(options, t4)
    with pytest.raises(BadInput, match="FSDP shards 4-bit bases only"):
        check_fsdp_qlora(options | {"bits": 8}, a100)
