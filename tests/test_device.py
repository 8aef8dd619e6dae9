"""Hardware choices: attention implementation (FlashAttention-2 fallback), dtype, missing
optional packages."""

from __future__ import annotations

import importlib.util

import pytest

from ftx.context import DeviceInfo
from ftx.device import choose_attention, choose_dtype
from ftx.errors import BadInput

CPU = DeviceInfo("cpu", True, 0, "CPU")
GPU = DeviceInfo("cuda", True, 1, "GPU")


def without(monkeypatch, *packages):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in packages else real(name, *a)
    )


def test_auto_attention_falls_back_to_sdpa_without_flash_attn(monkeypatch):
    without(monkeypatch, "flash_attn")
    assert choose_attention("auto", CPU) == "sdpa"
    assert choose_attention("auto", GPU) == "sdpa"
    with pytest.raises(BadInput, match="flash-attn"):
        choose_attention("flash_attention_2", GPU)
    assert choose_attention("eager", CPU) == "eager"


def test_auto_attention_uses_flash_attn_on_cuda_when_installed(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "flash_attn" else real(name, *a),
    )
    assert choose_attention("auto", GPU) == "flash_attention_2"
    assert choose_attention("auto", CPU) == "sdpa"  # flash-attn is CUDA only
    with pytest.raises(BadInput):
        choose_attention("flash_attention_2", CPU)


def test_dtype_choice():
    assert choose_dtype("auto", CPU) == "float32"  # fp32 masters, bf16 autocast for compute
    assert choose_dtype("auto", GPU) == "float32"  # fp32 masters on GPUs too (autocast)
    assert choose_dtype("float16", CPU) == "float16"


@pytest.mark.parametrize("package", ["bitsandbytes", "peft"])
def test_qlora_names_the_missing_package(monkeypatch, package):
    from ftx_qlora import require

    without(monkeypatch, package)
    with pytest.raises(BadInput) as err:
        require(package)
    assert f"'{package}'" in err.value.message and "pip install ftx-qlora" in err.value.hint
