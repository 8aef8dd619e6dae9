"""Batches: padded and padding-free give the same loss; no attention across examples."""

from __future__ import annotations

import pytest

from ftx.data import (
    IGNORE_INDEX,
    Conversation,
    PackingCollator,
    resolve_packing,
    tokenize_dataset,
)
from ftx.errors import BadInput
from tests.data_fixtures import chat_tokenizer, tiny_dirs  # noqa: F401


def _examples(tokenizer) -> list[dict]:
    convs = [
        Conversation(
            messages=[
                {"role": "user", "content": "hello world " * k},
                {"role": "assistant", "content": "the answer is " + "42 " * (5 - k)},
            ]
        )
        for k in (1, 4, 2)
    ]
    return tokenize_dataset(convs, tokenizer, max_length=512).examples


def test_padding_free_batch_layout(chat_tokenizer):  # noqa: F811
    examples = _examples(chat_tokenizer)
    batch = PackingCollator(chat_tokenizer.pad_token_id, padding_free=True)(examples)
    assert set(batch) == {"input_ids", "labels", "position_ids"}
    lengths = [len(e["input_ids"]) for e in examples]
    assert batch["input_ids"].shape == (1, sum(lengths))
    assert batch["input_ids"][0].tolist() == [t for e in examples for t in e["input_ids"]]
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    positions = batch["position_ids"][0].tolist()
    assert [i for i, p in enumerate(positions) if p == 0] == starts
    assert positions == [p for n in lengths for p in range(n)]
    labels = batch["labels"][0].tolist()
    for start, example in zip(starts, examples, strict=True):
        assert labels[start] == IGNORE_INDEX
        n = len(example["labels"])
        assert labels[start + 1 : start + n] == example["labels"][1:]


def test_padded_batch_layout(chat_tokenizer):  # noqa: F811
    examples = _examples(chat_tokenizer)
    pad = chat_tokenizer.pad_token_id
    batch = PackingCollator(pad, padding_free=False, pad_to_multiple_of=8)(examples)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    width = batch["input_ids"].shape[1]
    assert width % 8 == 0 and width >= max(len(e["input_ids"]) for e in examples)
    for row, example in enumerate(examples):
        n = len(example["input_ids"])
        assert batch["input_ids"][row, :n].tolist() == example["input_ids"]
        assert batch["input_ids"][row, n:].eq(pad).all()
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (width - n)
        assert batch["labels"][row, :n].tolist() == example["labels"]
        assert batch["labels"][row, n:].eq(IGNORE_INDEX).all()


@pytest.mark.parametrize("attn", ["sdpa", "eager", "ftx_sdpa"])
def test_padding_free_equals_padded_loss_and_logits(tiny_dirs, chat_tokenizer, attn):  # noqa: F811
    """No token attends across an example boundary in a padding-free batch (use_cache=False)."""
    import torch
    from transformers import AutoModelForCausalLM

    from ftx.attention import register

    register()

    model = AutoModelForCausalLM.from_pretrained(tiny_dirs["chat"], attn_implementation=attn)
    model.eval()
    examples = _examples(chat_tokenizer)
    padded = PackingCollator(chat_tokenizer.pad_token_id, padding_free=False)(examples)
    packed = PackingCollator(chat_tokenizer.pad_token_id, padding_free=True)(examples)
    with torch.no_grad():
        out_padded = model(**padded, use_cache=False)
        out_packed = model(**packed, use_cache=False)
        alone = [
            model(input_ids=torch.tensor([e["input_ids"]]), use_cache=False).logits[0]
            for e in examples
        ]
    assert abs(out_padded.loss.item() - out_packed.loss.item()) < 1e-4
    start = 0
    for row, (example, logits) in enumerate(zip(examples, alone, strict=True)):
        n = len(example["input_ids"])
        torch.testing.assert_close(
            out_packed.logits[0, start : start + n], logits, atol=1e-4, rtol=0
        )
        torch.testing.assert_close(out_padded.logits[row, :n], logits, atol=1e-4, rtol=0)
        start += n


def test_padded_needs_a_pad_token():
    with pytest.raises(BadInput, match="pad token"):
        PackingCollator(None, padding_free=False)
    PackingCollator(None, padding_free=True)  # padding-free never pads


@pytest.mark.parametrize(
    ("setting", "attn", "batch", "expected"),
    [
        (True, "sdpa", 1, True),
        ("true", "eager", 8, True),
        (False, "flash_attention_2", 8, False),
        ("false", "sdpa", 8, False),
        ("auto", "flash_attention_2", 8, True),
        ("auto", "flash_attention_3", 2, True),
        ("auto", "flash_attention_2", 1, False),
        ("auto", "sdpa", 8, False),
        ("auto", "eager", 8, False),
        ("auto", "some_custom_kernel", 8, False),
    ],
)
def test_resolve_packing(setting, attn, batch, expected):
    assert resolve_packing(setting, attn_implementation=attn, batch_size=batch) is expected
    for device in ("cpu", "cuda"):
        got = resolve_packing(setting, attn_implementation=attn, batch_size=batch, device=device)
        assert got is expected


def test_resolve_packing_rejects_bad_values():
    with pytest.raises(BadInput, match="auto, true or false"):
        resolve_packing("maybe", attn_implementation="sdpa")
    with pytest.raises(BadInput, match="padding-free"):
        resolve_packing(True, attn_implementation="some_custom_kernel")
