"""ftx_sdpa: packed rows example by example, short bf16 rows on the CPU in fp32; otherwise sdpa."""

from __future__ import annotations

import pytest

from tests.data_fixtures import chat_tokenizer, tiny_dirs  # noqa: F401

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def uncalibrated(monkeypatch):
    """Rule 2 at its uncalibrated length: a run earlier in this process may have calibrated
    this CPU to another (``tests/test_calibration.py`` covers the calibrated lengths)."""
    from ftx import calibration

    monkeypatch.setattr(calibration, "APPLIED", None)


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
    for attn in ("sdpa", "ftx_sdpa"):
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
    ref, ours = outputs["sdpa"], outputs["ftx_sdpa"]
    assert torch.equal(ours[0], ref[0]) and torch.equal(ours[1], ref[1])
    torch.testing.assert_close(ours[2], ref[2], atol=1e-5, rtol=0)


def test_packed_rows_run_example_by_example(tiny_dirs):  # noqa: F811
    """The per-example path is taken (not a masked sdpa call over the whole row)."""
    from unittest import mock

    import torch.nn.functional as F

    from ftx.data import PackingCollator

    model = _load(tiny_dirs["chat"], "ftx_sdpa")
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


class _Attention(torch.nn.Module):
    """What transformers' SDPA function reads off an attention module."""

    num_key_value_groups = 3
    is_causal = True


def _qkv(batch, length, dtype, heads=6, kv_heads=2, dim=8):
    gen = torch.Generator().manual_seed(length)
    q, k, v = (
        torch.randn(batch, n, length, dim, generator=gen).to(dtype).requires_grad_()
        for n in (heads, kv_heads, kv_heads)
    )
    return q, k, v


def _spy_dtypes():
    """Patch torch's SDPA to record the dtype and query length of every call."""
    from unittest import mock

    import torch.nn.functional as F

    calls, real = [], F.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        # The dtype the kernel runs in: CPU autocast (when on) casts fp32 inputs down.
        autocast = torch.is_autocast_enabled("cpu") and q.dtype == torch.float32
        calls.append((torch.get_autocast_dtype("cpu") if autocast else q.dtype, q.shape[2]))
        return real(q, k, v, *args, **kwargs)

    return calls, mock.patch("torch.nn.functional.scaled_dot_product_attention", spy)


@pytest.mark.parametrize(
    ("length", "dtype", "autocast", "computes_in"),
    [
        (24, torch.bfloat16, False, torch.float32),  # short bf16 on the CPU: the fp32 kernel
        (24, torch.float32, True, torch.float32),  # Llama under autocast: fp32 query, bf16 SDPA
        (193, torch.bfloat16, False, torch.bfloat16),  # longer than FP32_MAX_LENGTH: as given
        (193, torch.float32, True, torch.bfloat16),
        (24, torch.float32, False, torch.float32),
    ],
)
def test_short_bf16_rows_compute_in_fp32(length, dtype, autocast, computes_in):
    """The kernel's dtype follows rule 2; the output has the dtype plain SDPA returns, and equals
    the fp32 kernel's result on the same inputs, rounded once."""
    from ftx.attention import FP32_MAX_LENGTH, sdpa_forward

    assert 24 <= FP32_MAX_LENGTH < 193
    q, k, v = _qkv(2, length, dtype)
    mask = torch.ones(2, 1, length, length, dtype=torch.bool).tril()
    mask[0, :, :, :3] = False  # a left-padded row
    mask[0, :, torch.arange(length), torch.arange(length)] = True
    calls, patch = _spy_dtypes()
    with patch, torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out, _ = sdpa_forward(_Attention(), q, k, v, mask)
    plain = torch.bfloat16 if autocast else dtype
    assert calls == [(computes_in, length)] and out.dtype == plain
    reference = torch.nn.functional.scaled_dot_product_attention(
        *(
            t.detach().to(computes_in)
            for t in (q, k.repeat_interleave(3, 1), v.repeat_interleave(3, 1))
        ),
        attn_mask=mask,
    ).transpose(1, 2)
    torch.testing.assert_close(out, reference.to(plain), atol=0, rtol=0)
    out.float().square().sum().backward()
    assert q.grad.dtype == k.grad.dtype == v.grad.dtype == dtype
    assert all(t.grad.isfinite().all() and t.grad.abs().sum() > 0 for t in (q, k, v))


def test_packed_examples_choose_the_kernel_dtype_each():
    """A packed bf16 row of a short and a long example: the short one in fp32, the long in bf16;
    each equals causal SDPA over that example alone."""
    from ftx.attention import sdpa_forward

    short, long_ = 20, 200
    q, k, v = _qkv(1, short + long_, torch.bfloat16)
    positions = torch.cat([torch.arange(short), torch.arange(long_)])[None]
    calls, patch = _spy_dtypes()
    with patch, torch.no_grad():
        out, _ = sdpa_forward(_Attention(), q, k, v, None, position_ids=positions)
    assert calls == [(torch.float32, short), (torch.bfloat16, long_)]
    assert out.dtype == torch.bfloat16
    for a, b in ((0, short), (short, short + long_)):
        alone, _ = sdpa_forward(_Attention(), q[:, :, a:b], k[:, :, a:b], v[:, :, a:b], None)
        torch.testing.assert_close(out[:, a:b], alone, atol=0, rtol=0)


@pytest.mark.parametrize(
    ("requested", "resolved", "packing", "device", "expected"),
    [
        ("auto", "sdpa", False, "cpu", True),
        ("auto", "sdpa", True, "cuda", True),
        ("auto", "sdpa", False, "cuda", False),  # padded rows on a GPU: torch's kernels
        ("sdpa", "sdpa", True, "cpu", False),  # asked for by name: transformers' own
        ("auto", "flash_attention_2", True, "cuda", False),
        ("eager", "eager", False, "cpu", False),
    ],
)
def test_which_runs_train_on_ftx_sdpa(requested, resolved, packing, device, expected):
    from ftx.attention import suits_run

    assert suits_run(requested, resolved, packing=packing, device=device) is expected
