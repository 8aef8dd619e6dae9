"""Finding IA3's target layers for any architecture, and rejecting bad option values."""

from __future__ import annotations

import pytest

from ftx.errors import BadInput
from ftx_ia3.targets import find_targets, guess_targets, resolve_targets


def tiny(model_type: str):
    """A tiny random model of a given architecture (no tokenizer, nothing downloaded)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    gpt2 = {"n_embd": 32, "n_layer": 2, "n_head": 4, "bos_token_id": 0, "eos_token_id": 0}
    sizes = {"llama": {}, "gpt_neox": {}, "gpt2": gpt2}
    common = {
        "vocab_size": 64,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
    }
    config = AutoConfig.for_model(model_type, **({**common, **sizes[model_type]}))
    return AutoModelForCausalLM.from_config(config)


def test_llama_uses_peft_table_and_structure_agrees():
    model = tiny("llama")
    assert find_targets(model) == (["k_proj", "v_proj", "down_proj"], ["down_proj"])
    targets, feedforward = guess_targets(model)
    assert targets == ["self_attn.k_proj", "self_attn.v_proj", "mlp.down_proj"]
    assert feedforward == ["mlp.down_proj"]


@pytest.mark.parametrize("model_type", ["gpt_neox", "gpt2"])
def test_structural_search_finds_key_value_and_mlp_output(model_type):
    targets, feedforward = guess_targets(tiny(model_type))
    assert feedforward and set(feedforward) < set(targets)
    assert any("attn" in t or "attention" in t for t in targets)
    assert all(t.startswith("mlp.") for t in feedforward)


def test_feedforward_must_be_a_subset_of_targets():
    with pytest.raises(BadInput, match=r"method.feedforward_modules: down_proj not in"):
        resolve_targets(tiny("llama"), ["k_proj", "v_proj"], ["down_proj"])


def test_unknown_target_names_the_option_and_the_layers():
    with pytest.raises(BadInput, match=r"method.target_modules: kv_proj matches no layer.*k_proj"):
        resolve_targets(tiny("llama"), ["kv_proj"], None)


def test_user_targets_keep_feedforward_from_the_model():
    targets, feedforward = resolve_targets(tiny("llama"), ["v_proj", "down_proj"], None)
    assert (targets, feedforward) == (["v_proj", "down_proj"], ["down_proj"])
