"""Device-dependent choices (ftx.precision), with the device faked at the boundary: what would
reach the Trainer (its arguments object), the model's load dtype and bitsandbytes' dtypes on a
T4 (no bf16), an A100 and an H100; and why fp32 master weights are the default (bf16 rounding)."""

from __future__ import annotations

import pytest

from ftx import config as cfg
from ftx.config.checks import check_training_arguments
from ftx.context import DeviceInfo
from ftx.errors import BadInput
from ftx.plugins import discover, get_plugin, manager_for
from ftx.precision import lost_update_share, master_dtype, training_precision
from ftx.runner.preparation import resolve_config

T4 = DeviceInfo(kind="cuda", bf16=False, count=1, name="Tesla T4")
A100 = DeviceInfo(kind="cuda", bf16=True, count=1, name="NVIDIA A100-SXM4-80GB")
H100 = DeviceInfo(kind="cuda", bf16=True, count=8, name="NVIDIA H100 80GB HBM3")
OLD_CPU = DeviceInfo(kind="cpu", bf16=False, count=0, name="CPU")


def resolve_for(
    method: str,
    device: DeviceInfo,
    sets: list[str] | None = None,
    objective: str = "supervised",
    **kw,
):
    """Resolve the config of ``ftx run --plugin method --objective objective`` on ``device`` as
    ``prepare`` does; with ``arguments=True`` also the real arguments object the Trainer would
    get."""
    import transformers.training_args as training_args

    with pytest.MonkeyPatch.context() as patch:
        # The boundary: what torch would say about this GPU's bf16 support.
        patch.setattr(training_args, "is_torch_bf16_gpu_available", lambda: device.bf16)
        resolved = _resolve(method, device, sets, objective)
        if kw.get("arguments"):
            return resolved, check_training_arguments(resolved, device)
    return resolved


def _resolve(method: str, device: DeviceInfo, sets: list[str] | None, objective: str):
    found = discover()
    chosen = get_plugin(objective, found, kind="objective")
    pm = manager_for(get_plugin(method, found, kind="method"), objective=chosen)
    raw = cfg.merge({}, {}, list(sets or []), plugin=method)
    return resolve_config(pm, raw, method, objective, device)[0]


@pytest.mark.parametrize(
    ("device", "bf16", "fp16", "mode"),
    [
        (T4, False, True, "mixed-fp16"),
        (A100, True, False, "mixed-bf16"),
        (H100, True, False, "mixed-bf16"),
    ],
)
@pytest.mark.parametrize("method", ["fft", "sft", "qlora"])
def test_gpu_defaults_reach_the_trainer(method, device, bf16, fp16, mode):
    resolved, args = resolve_for(method, device, arguments=True)
    assert (args.bf16, args.fp16) == (bf16, fp16)
    assert args.activation_checkpointing is True
    assert args.activation_checkpointing_kwargs == {"use_reentrant": False}
    weights = master_dtype(resolved.config["model"]["dtype"], device)
    assert weights == "float32"  # fp32 master weights for full and partial tuning
    chosen = training_precision(weights, resolved.train_args)
    assert chosen.mode == mode and chosen.loss_scaling is fp16
    if method == "qlora":  # the QLoRA paper's paged optimizer on CUDA
        assert args.optim == "paged_adamw_32bit"
    else:
        assert args.optim == "adamw_torch_fused"


def test_cpu_keeps_its_defaults():
    resolved, args = resolve_for("qlora", OLD_CPU, arguments=True)
    assert (args.bf16, args.fp16, args.activation_checkpointing) == (False, False, False)
    assert args.optim != "paged_adamw_32bit" and not args.activation_checkpointing_kwargs
    assert training_precision("float32", resolved.train_args).mode == "fp32"


@pytest.mark.parametrize(
    ("device", "compute", "storage", "load"),
    [
        (T4, "float16", "float16", "float16"),
        (A100, "bfloat16", "bfloat16", "bfloat16"),
        (H100, "bfloat16", "bfloat16", "bfloat16"),
        (OLD_CPU, "float32", None, "float32"),
    ],
)
def test_qlora_quantisation_dtypes(device, compute, storage, load):
    from ftx_qlora.settings import load_dtype, quantization_settings

    options = resolve_for("qlora", device).options
    quant = quantization_settings(options, device)
    assert quant["bnb_4bit_quant_type"] == "nf4" and quant["bnb_4bit_use_double_quant"]
    assert quant["bnb_4bit_compute_dtype"] == compute
    assert quant["bnb_4bit_quant_storage"] == storage
    assert load_dtype(options, device) == load


def test_pure_bf16_only_on_request_and_recorded():
    resolved = resolve_for("fft", A100, ["model.dtype=bfloat16"])
    weights = master_dtype(resolved.config["model"]["dtype"], A100)
    chosen = training_precision(weights, resolved.train_args)
    assert chosen.mode == "pure-bf16" and "round away" in chosen.describe()


@pytest.mark.parametrize(
    ("device", "sets", "needle"),
    [
        (T4, ["train.bf16=true"], "has no bf16 support"),
        (T4, ["model.dtype=bfloat16"], "model.dtype=bfloat16"),
        (OLD_CPU, ["train.optim=paged_adamw_8bit"], "paged optimizers need a CUDA GPU"),
        (A100, ["train.fp16=true", "train.bf16=true"], "both true"),
    ],
)
def test_precision_and_optimizer_bad_input(device, sets, needle):
    with pytest.raises(BadInput) as err:
        resolve_for("fft", device, sets)
    assert needle in err.value.message


def test_bitsandbytes_optimizer_without_bitsandbytes(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "bitsandbytes" else real(n, *a)
    )
    with pytest.raises(BadInput, match="needs the bitsandbytes package"):
        resolve_for("fft", A100, ["train.optim=paged_adamw_32bit"])


def test_an_explicit_choice_is_kept_on_a_t4():
    resolved = resolve_for("fft", T4, ["train.fp16=false"])
    assert (resolved.train_args["bf16"], resolved.train_args["fp16"]) == (False, False)


def test_bf16_weights_lose_small_updates_and_fp32_masters_keep_them():
    """One Adam-sized step (|update| = lr, Adam's normalised step) at lr 2e-5 on weights of a
    trained model's scale: in bf16 most entries do not move; fp32 master weights take them all,
    and the bf16 copy autocast computes with still follows them once they add up."""
    import torch

    generator = torch.Generator().manual_seed(0)
    weights = torch.randn(256, 256, generator=generator) * 0.02
    signs = torch.randint(0, 2, weights.shape, generator=generator) * 2 - 1
    update = -2e-5 * signs.float()
    lost_bf16 = lost_update_share(weights, update, torch.bfloat16)
    lost_fp32 = lost_update_share(weights, update, torch.float32)
    assert lost_bf16 > 0.5  # most of a bf16 update rounds away
    assert lost_fp32 < 0.01  # the default, fp32 masters, keeps (nearly) every one
    # 50 such steps: the fp32 masters move by 50 lr; bf16 weights stay where they were mostly.
    master, pure = weights.clone(), weights.to(torch.bfloat16)
    for _ in range(50):
        master += update
        pure += update.to(torch.bfloat16)
    moved_master = (master - weights).abs().mean().item()
    moved_pure = (pure.float() - weights.to(torch.bfloat16).float()).abs().mean().item()
    assert moved_master == pytest.approx(50 * 2e-5, rel=1e-3)
    assert moved_pure < 0.5 * moved_master


def test_non_finite_loss_under_fp16_names_fp16():
    from types import SimpleNamespace

    from ftx.runner.failures import NonFiniteLoss

    t4_run = SimpleNamespace(train_args={"learning_rate": 1e-4, "fp16": True}, dtype="float32")
    message = str(NonFiniteLoss(7, None, t4_run))
    assert "step 7" in message and "fp16 overflow (this run computes in fp16" in message
    assert "--set train.fp16=false" in message
    cpu_run = SimpleNamespace(train_args={"learning_rate": 1e-4, "bf16": True}, dtype="float32")
    assert "this run computes in fp16" not in str(NonFiniteLoss(7, None, cpu_run))
