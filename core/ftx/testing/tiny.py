"""Tiny random models for tests: real Llama architecture, random weights, a local tokenizer.

Nothing is downloaded. `make_tiny_model(path)` writes a directory that
`AutoModelForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained` load in well under a
second, so every test can afford its own copy.
"""

from __future__ import annotations

from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "user assistant system hello world what is the answer",
    "0 1 2 3 4 5 6 7 8 9 + - = , . : ; ? ! ( ) { } [ ] \" '",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "json name value true false null order item price total date",
    "translate convert reverse answer question instruction input output",
]


def _train_tokenizer(vocab_size: int, chat: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 20, trainer=trainer)
    if chat:
        # Like SmolLM2: the end-of-turn token doubles as eos and pad.
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok,
            bos_token="<|im_start|>",
            eos_token="<|im_end|>",
            pad_token="<|im_end|>",
            unk_token="<unk>",
        )
        fast.chat_template = CHATML_TEMPLATE
    else:
        # A "base model": no chat template, classic <s>/</s>, no pad token.
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
        )
    return fast


def make_tiny_model(
    path: str | Path,
    *,
    chat_template: bool = True,
    hidden_size: int = 32,
    num_layers: int = 2,
    vocab_size: int = 384,
    seed: int = 0,
    intermediate_size: int | None = None,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    tie_word_embeddings: bool = True,
) -> Path:
    """Write a random-weight Llama causal LM and its tokenizer to `path`; return `path`.

    `chat_template=True` gives a ChatML tokenizer whose pad token is the end-of-turn token (the
    SmolLM2 situation); `False` gives a base-model tokenizer with no template and no pad token.
    `intermediate_size` defaults to ``2 * hidden_size``; the head counts must divide
    `hidden_size` (and each other). Larger shapes (hundreds of millions of parameters) serve
    memory-calibration tests; the vocabulary stays as small as the local tokenizer.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tokenizer = _train_tokenizer(vocab_size, chat_template)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=tie_word_embeddings,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_tiny_dataset(path: str | Path, *, rows: int = 48, seed: int = 0) -> Path:
    """Write a small learnable chat dataset (Vicuna/FastChat format, JSONL) to ``path``.

    The task: repeat the given words in reverse order. It is easy enough that a tiny model's
    loss falls within a few steps, and every row has a single exact reference answer.
    """
    import json
    import random

    words = [
        "red",
        "green",
        "blue",
        "cat",
        "dog",
        "fox",
        "one",
        "two",
        "three",
        "apple",
        "pear",
        "plum",
    ]
    rng = random.Random(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            picked = rng.sample(words, 3)
            row = {
                "id": f"tiny-{i}",
                "conversations": [
                    {"from": "human", "value": "reverse: " + " ".join(picked)},
                    {"from": "gpt", "value": " ".join(reversed(picked))},
                ],
            }
            fh.write(json.dumps(row) + "\n")
    return path
