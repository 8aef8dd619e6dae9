"""Tiny random models for tests: real architectures, random weights, a local tokenizer.

Nothing is downloaded. `make_tiny_model(path)` writes a directory that
`AutoModelForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained` load in well under a
second, so every test can afford its own copy. It builds Llama unless ``architecture`` names one
of :data:`ARCHITECTURES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

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


_CHAT_TOKEN_IDS = {"bos_token_id": 3, "eos_token_id": 4, "pad_token_id": 4}
"""The ChatML tokenizer's ids of ``<|im_start|>`` and ``<|im_end|>`` (specials come first)."""


def _train_tokenizer(vocab_size: int, chat: bool, byte_alphabet: bool = True):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet() if byte_alphabet else [],
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


LLAMA2_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}"
    "{% endif %}{% endfor %}"
)
"""A Llama 2-style chat template (system messages dropped), for the SentencePiece tokenizer."""


def _train_sentencepiece_tokenizer(vocab_size: int, chat: bool):
    """A Llama 2-style tokenizer: ``<unk> <s> </s>``, the 256 byte tokens ``<0x00>``…``<0xFF>``,
    then pieces learnt on the corpus with ``"▁"`` for a space (Metaspace), byte fallback for
    any character it lacks, and merges rebuilt from the vocabulary ordered by piece, as
    transformers converts a SentencePiece model (so llama.cpp's SentencePiece tokenizer, which
    merges by score, splits text the same way)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaTokenizer
    from transformers.tokenization_utils_base import generate_merges

    learner = Tokenizer(models.BPE())
    learner.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=max(vocab_size - 259, 256), show_progress=False)
    learner.train_from_iterator(_CORPUS * 20, trainer=trainer)
    vocab = {token: i for i, token in enumerate(["<unk>", "<s>", "</s>"])}
    vocab.update({f"<0x{byte:02X}>": 3 + byte for byte in range(256)})
    for token, _ in sorted(learner.get_vocab().items(), key=lambda item: item[1]):
        vocab.setdefault(token, len(vocab))
    merges = generate_merges(vocab, {token: -float(i) for token, i in vocab.items()})
    tokenizer = LlamaTokenizer(vocab=vocab, merges=merges, add_bos_token=True)
    if chat:
        tokenizer.chat_template = LLAMA2_TEMPLATE
    return tokenizer


class Architecture(NamedTuple):
    config_class: str
    """The transformers config class."""
    tied: bool
    """Default ``tie_word_embeddings`` (as the family's small checkpoints ship)."""


ARCHITECTURES: dict[str, Architecture] = {
    "llama": Architecture("LlamaConfig", True),
    "qwen2": Architecture("Qwen2Config", True),
    "qwen3": Architecture("Qwen3Config", False),
    "gemma": Architecture("GemmaConfig", True),
    "gemma2": Architecture("Gemma2Config", True),
    "gemma3": Architecture("Gemma3TextConfig", True),
    "phi3": Architecture("Phi3Config", False),
    "mistral": Architecture("MistralConfig", False),
    "gpt2": Architecture("GPT2Config", True),
    "opt": Architecture("OPTConfig", True),
    "gpt_neox": Architecture("GPTNeoXConfig", False),
}
"""The architectures `make_tiny_model` builds, tied and untied. ``gemma3`` is the text-only
causal LM (``Gemma3ForCausalLM``, model type ``gemma3_text``)."""


def make_tiny_model(
    path: str | Path,
    *,
    chat_template: bool = True,
    vocab_size: int = 384,
    seed: int = 0,
    architecture: str = "llama",
    byte_alphabet: bool = True,
    tokenizer: str = "byte-level",
    **shape: Any,
) -> Path:
    """Write a random-weight causal LM and its tokenizer to `path`; return `path`.

    `architecture` is a key of :data:`ARCHITECTURES` (default Llama); `shape` takes the size
    arguments of :func:`tiny_config` (``hidden_size``, ``num_layers``, ``intermediate_size``,
    ``num_attention_heads``, ``num_key_value_heads``, ``tie_word_embeddings``).

    `chat_template=True` gives a ChatML tokenizer whose pad token is the end-of-turn token (the
    SmolLM2 situation); `False` gives a base-model tokenizer with no template and no pad token.
    Larger shapes (hundreds of millions of parameters) serve memory-calibration tests; the
    vocabulary stays as small as the local tokenizer. `byte_alphabet=False` leaves out the
    bytes the tokenizer's corpus does not use: with a small `vocab_size` (e.g. 80) the
    vocabulary is about that small, so a random model samples any one token often enough for
    a reward to find it (the GRPO tests); text outside the corpus's characters cannot be
    encoded then. `tokenizer="sentencepiece"` gives a Llama 2-style tokenizer instead (byte
    fallback, ``"▁"`` for a space, ``<s>``/``</s>``, no pad token; its chat template, if any, is
    Llama 2's ``[INST]`` one); `byte_alphabet` does not apply to it.
    """
    import torch
    from transformers import AutoModelForCausalLM

    path = Path(path)
    if tokenizer == "sentencepiece":
        tok = _train_sentencepiece_tokenizer(vocab_size, chat_template)
    elif tokenizer == "byte-level":
        tok = _train_tokenizer(vocab_size, chat_template, byte_alphabet)
    else:
        raise ValueError(f"tokenizer {tokenizer!r} is not 'byte-level' or 'sentencepiece'")
    config = tiny_config(
        architecture,
        vocab_size=len(tok),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **shape,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tok.pad_token_id or tok.eos_token_id
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def tiny_config(
    architecture: str = "llama",
    *,
    vocab_size: int = 384,
    hidden_size: int = 32,
    num_layers: int = 2,
    intermediate_size: int | None = None,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    tie_word_embeddings: bool | None = None,
    **token_ids: int | None,
):
    """The transformers config of a tiny `architecture` (a key of :data:`ARCHITECTURES`) with
    512 positions; builds nothing. `intermediate_size` defaults to ``2 * hidden_size``; the head
    counts must divide `hidden_size` (and each other); `tie_word_embeddings=None` takes the
    architecture's default from :data:`ARCHITECTURES`; ``token_ids`` are the ``bos/eos/pad``
    ids (default: those of the ChatML tokenizer)."""
    import transformers

    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture {architecture!r} is not one of {', '.join(ARCHITECTURES)}")
    intermediate_size = intermediate_size or hidden_size * 2
    head_dim = hidden_size // num_attention_heads
    shape: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_attention_heads,
        "max_position_embeddings": 512,
        "tie_word_embeddings": (
            ARCHITECTURES[architecture].tied if tie_word_embeddings is None else tie_word_embeddings
        ),
        **_CHAT_TOKEN_IDS,
        **token_ids,
    }
    if architecture == "gpt2":
        shape["n_inner"] = intermediate_size
    elif architecture == "opt":
        shape.update(ffn_dim=intermediate_size, word_embed_proj_dim=hidden_size)
    else:
        shape["intermediate_size"] = intermediate_size
    if architecture not in ("gpt2", "opt", "gpt_neox"):  # those have no grouped-query attention
        shape["num_key_value_heads"] = num_key_value_heads
    if architecture == "phi3":
        shape["original_max_position_embeddings"] = 512
    if architecture in ("qwen3", "mistral", "gemma", "gemma2", "gemma3"):
        shape["head_dim"] = head_dim  # their defaults are 128 or 256
    if architecture in ("gemma2", "gemma3"):
        # Sliding-window and global layers alternate; the tiny dataset's rows exceed 16 tokens.
        shape.update(
            query_pre_attn_scalar=head_dim,
            sliding_window=16,
            layer_types=[
                "sliding_attention" if i % 2 == 0 else "full_attention" for i in range(num_layers)
            ],
        )
    return getattr(transformers, ARCHITECTURES[architecture].config_class)(**shape)


_TINY_WORDS = (
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
)


def _tiny_tasks(rows: int, seed: int) -> list[list[str]]:
    """``rows`` picks of three distinct words, the same for the same seed in every writer."""
    import random

    rng = random.Random(seed)
    return [rng.sample(_TINY_WORDS, 3) for _ in range(rows)]


def _write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> Path:
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
    return path


def write_tiny_dataset(path: str | Path, *, rows: int = 48, seed: int = 0) -> Path:
    """Write a small learnable chat dataset (Vicuna/FastChat format, JSONL) to ``path``.

    The task: repeat the given words in reverse order. It is easy enough that a tiny model's
    loss falls within a few steps, and every row has a single exact reference answer.
    """
    return _write_jsonl(
        path,
        [
            {
                "id": f"tiny-{i}",
                "conversations": [
                    {"from": "human", "value": "reverse: " + " ".join(picked)},
                    {"from": "gpt", "value": " ".join(reversed(picked))},
                ],
            }
            for i, picked in enumerate(_tiny_tasks(rows, seed))
        ],
    )


TINY_REJECTED = "I do not know"
"""The rejected (undesirable) answer of every row of :func:`write_tiny_preference_dataset`."""


def write_tiny_preference_dataset(
    path: str | Path, *, rows: int = 48, seed: int = 0, labelled: bool = False
) -> Path:
    """Write the tiny task of :func:`write_tiny_dataset` as preference data (JSONL) to ``path``.

    Pairs (format ``preference``: ``prompt``/``chosen``/``rejected`` as text): the same prompts
    for the same seed, ``chosen`` the words reversed, ``rejected`` the unhelpful
    :data:`TINY_REJECTED` (a near miss such as the words in the given order shares every token
    with ``chosen``: too subtle for a random model to learn in a few steps, while this is learnt
    at once, so a preference objective's margin visibly grows). ``labelled=True`` writes KTO's
    unpaired rows instead (format ``kto``): each pair as a desirable (``label`` true) and an
    undesirable completion of its prompt, ``2 * rows`` rows.
    """
    records: list[dict[str, Any]] = []
    for i, picked in enumerate(_tiny_tasks(rows, seed)):
        prompt = "reverse: " + " ".join(picked)
        chosen, rejected = " ".join(reversed(picked)), TINY_REJECTED
        if not labelled:
            records.append(
                {"id": f"tiny-{i}", "prompt": prompt, "chosen": chosen, "rejected": rejected}
            )
            continue
        records += [
            {"id": f"tiny-{i}-good", "prompt": prompt, "completion": chosen, "label": True},
            {"id": f"tiny-{i}-bad", "prompt": prompt, "completion": rejected, "label": False},
        ]
    return _write_jsonl(path, records)


def write_tiny_prompt_dataset(path: str | Path, *, rows: int = 48, seed: int = 0) -> Path:
    """Write the tiny task of :func:`write_tiny_dataset` as prompt rows (JSONL) to ``path``, for
    objectives that generate their answers (``grpo``): ``prompt`` (text) and the answer in a
    ``reference`` column."""
    return _write_jsonl(
        path,
        [
            {
                "id": f"tiny-{i}",
                "prompt": "reverse: " + " ".join(picked),
                "reference": " ".join(reversed(picked)),
            }
            for i, picked in enumerate(_tiny_tasks(rows, seed))
        ],
    )
