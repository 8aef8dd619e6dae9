"""``model.attn_implementation``: ``auto`` picks what the model's class supports (from its config,
nothing loaded); an explicit value it does not support is bad input naming key, value and model."""

from __future__ import annotations

import json

import pytest

from ftx.context import DeviceInfo
from ftx.device import choose_attention, supported_attention
from ftx.errors import BadInput
from ftx.testing.tiny import ARCHITECTURES, tiny_config

CPU = DeviceInfo("cpu", True, 0, "CPU")
GPU = DeviceInfo("cuda", True, 1, "GPU")


@pytest.fixture
def flash_attn_installed(monkeypatch):
    monkeypatch.setattr("ftx.device.flash_attn_available", lambda: True)


@pytest.fixture(autouse=True)
def no_flash_attn(monkeypatch):
    """Unless a test installs it: whatever this machine has, flash-attn counts as absent."""
    monkeypatch.setattr("ftx.device.flash_attn_available", lambda: False)


def test_gemma2_has_no_sdpa_in_the_installed_transformers():
    """The premise of the fallback: transformers refuses SDPA for Gemma2 (soft-capping)."""
    from transformers import Gemma2ForCausalLM

    assert Gemma2ForCausalLM._supports_sdpa is False
    assert supported_attention({"model_type": "gemma2"}) == ("flash_attention_2", "eager")


@pytest.mark.parametrize("device", [CPU, GPU], ids=["cpu", "cuda-without-flash-attn"])
def test_auto_gives_eager_for_gemma2_and_sdpa_for_llama(device):
    assert choose_attention("auto", device, tiny_config("gemma2")) == "eager"
    assert choose_attention("auto", device, tiny_config("llama")) == "sdpa"
    assert choose_attention("eager", device, tiny_config("gemma2")) == "eager"


def test_config_dicts_resolve_like_configs(tmp_path):
    """A dict as read from config.json (or GGUF metadata) works: by model_type, else by the
    architectures list; a model transformers does not know keeps the default order."""
    config = tiny_config("gemma2")
    config.save_pretrained(tmp_path)
    as_read = json.loads((tmp_path / "config.json").read_text())
    assert choose_attention("auto", CPU, as_read) == "eager"
    assert choose_attention("auto", CPU, {"architectures": ["Gemma2ForCausalLM"]}) == "eager"
    remote = {"model_type": "my_remote_arch", "architectures": ["MyRemoteForCausalLM"]}
    assert supported_attention(remote) is None
    assert choose_attention("auto", CPU, remote) == "sdpa"


def test_auto_prefers_flash_attention_where_the_model_has_it(flash_attn_installed):
    assert choose_attention("auto", GPU, tiny_config("gemma2")) == "flash_attention_2"
    assert choose_attention("auto", GPU, tiny_config("llama")) == "flash_attention_2"
    # Gemma3's multimodal class (model type gemma3) declares no flash attention.
    assert choose_attention("auto", GPU, {"model_type": "gemma3"}) == "sdpa"
    assert choose_attention("auto", CPU, tiny_config("gemma2")) == "eager"


def test_explicit_sdpa_for_gemma2_is_bad_input():
    with pytest.raises(BadInput) as err:
        choose_attention("sdpa", CPU, tiny_config("gemma2"))
    message = err.value.message
    assert "model.attn_implementation=sdpa" in message
    assert "gemma2" in message and "eager" in message
    assert "auto" in err.value.hint


def test_explicit_flash_attention_without_cuda_is_bad_input(flash_attn_installed):
    with pytest.raises(BadInput) as err:
        choose_attention("flash_attention_2", CPU, tiny_config("llama"))
    assert "model.attn_implementation=flash_attention_2" in err.value.message
    assert "CUDA" in err.value.message and "llama" in err.value.message
    with pytest.raises(BadInput, match=r"model type gemma3 .*does not support it"):
        choose_attention("flash_attention_2", GPU, {"model_type": "gemma3"})
    assert choose_attention("flash_attention_2", GPU, tiny_config("gemma2")) == "flash_attention_2"


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_auto_agrees_with_transformers_own_default(architecture):
    """transformers' own default (SDPA, else eager) is what ``auto`` picks on a CPU."""
    from transformers import AutoModelForCausalLM

    config = tiny_config(architecture, hidden_size=16, num_layers=1)
    model = AutoModelForCausalLM.from_config(config)
    assert choose_attention("auto", CPU, config) == model.config._attn_implementation
