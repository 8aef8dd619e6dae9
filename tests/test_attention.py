"""ftx_varlen_sdpa: packed rows example by example; everything else exactly as sdpa."""

from __future__ import annotations

import pytest

from tests.data_fixtures import chat_tokenizer, tiny_dirs  # noqa: F401

torch = pytest.importorskip("torch")


def _load(path, attn):
    from transformers import AutoModelForCausalLM

    from ftx.attention import register

    register()
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation=attn)
    return model.eval()


def test_generation_and_padded_batches_match_sdpa(tiny_dirs, chat_tokenizer):  # noqa: F811
    """Left-padded batched generation (a mask, a cache) and a single row give sdpa's tokens."""
    prompts = ["hello world", "the answer is 42 and more words here"]
    chat_tokenizer.padding_side = "left"
    batch = chat_tokenizer(prompts, return_tensors="pt", padding=True)
    outputs = {}
    for attn in ("sdpa", "ftx_varlen_sdpa"):
        model = _load(tiny_dirs["chat"], attn)
        with torch.no_grad():
            many = model.generate(**batch, max_new_tokens=8, do_sample=False)
            one = model.generate(
                **chat_tokenizer(prompts[1:], return_tensors="pt"),
                max_new_tokens=8,
                do_sample=False,
            )
            logits = model(**batch, use_cache=False).logits
        outputs[attn] = (many, one, logits)
    ref, ours = outputs["sdpa"], outputs["ftx_varlen_sdpa"]
    assert torch.equal(ours[0], ref[0]) and torch.equal(ours[1], ref[1])
    torch.testing.assert_close(ours[2], ref[2], atol=1e-5, rtol=0)


def test_packed_rows_run_example_by_example(tiny_dirs):  # noqa: F811
    """The per-example path is taken (not a masked sdpa call over the whole row)."""
    from unittest import mock

    import torch.nn.functional as F

    from ftx.data import PackingCollator

    model = _load(tiny_dirs["chat"], "ftx_varlen_sdpa")
    rows = [{"input_ids": list(range(5, 5 + n)), "labels": list(range(5, 5 + n))} for n in (4, 7)]
    packed = PackingCollator(0, padding_free=True)(rows)
    calls = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        calls.append((q.shape[2], kwargs.get("attn_mask"), kwargs.get("is_causal")))
        return real(q, k, v, *args, **kwargs)

    with mock.patch("torch.nn.functional.scaled_dot_product_attention", spy), torch.no_grad():
        model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False)
    layers = model.config.num_hidden_layers
    assert [length for length, _, _ in calls] == [4, 7] * layers
    assert all(mask is None and causal for _, mask, causal in calls)


def test_sliding_window_models_keep_sdpa():
    from transformers import LlamaConfig, MistralConfig

    from ftx.attention import applies_to

    assert applies_to(LlamaConfig())
    assert not applies_to(MistralConfig(sliding_window=64))
