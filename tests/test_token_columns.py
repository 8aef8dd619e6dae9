"""The columnar tokeniser (`ftx.data.encoding` + `ftx.data.columns`) gives exactly the ids,
labels and counts of the per-row method it replaced: each row tokenised alone, labelled token by
token from its offsets (or piece by piece without offsets), then truncated and dropped in Python.
Several hundred varied rows, several chunks, fast and offset-less tokenizers, a bos prefix."""

from __future__ import annotations

import itertools
import random

import pytest

from ftx.data import IGNORE_INDEX, Conversation, template_for, tokenize_dataset
from ftx.data.masking import mark_trained
from tests.data_fixtures import (  # noqa: F401
    NoOffsets,
    base_tokenizer,
    chat_tokenizer,
    smol_tokenizer,
    tiny_dirs,
)

WORDS = (
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "lazy",
    "latte",
    "2x",
    "M-TEA",
    "{json}",
    "é ü",
    "漢字",
)
MAX_LENGTH = 96


def _text(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def _rows(n: int = 300, seed: int = 0) -> list[Conversation]:
    """Chat rows (system message on some, 1-3 turns, answers long enough to be cut, prompts long
    enough to leave nothing trained) and plain text rows."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        source = f"rows.jsonl:{i + 1}"
        if i % 11 == 5:
            rows.append(Conversation(messages=[], source=source, text=_text(rng, 1, 40)))
            continue
        messages = [{"role": "system", "content": _text(rng, 1, 8)}] if i % 3 == 0 else []
        for _ in range(rng.randint(1, 3)):
            long_prompt = rng.random() < 0.1
            messages += [
                {
                    "role": "user",
                    "content": _text(rng, 30 if long_prompt else 1, 60 if long_prompt else 6),
                },
                {"role": "assistant", "content": _text(rng, 1, rng.choice([3, 12, 40]))},
            ]
        rows.append(Conversation(messages=messages, source=source))
    return rows


def _per_row(convs, tokenizer, template, train_on) -> tuple[list[dict], dict]:
    """The reference: one row at a time, one label per token in Python."""
    tmpl = template_for(tokenizer, template)
    examples, lengths, dropped = [], [], []
    truncated = tokens = trained = 0
    for conv in convs:
        p = mark_trained(conv, tokenizer, tmpl, train_on)
        ids, labels = list(p.prefix_ids), [IGNORE_INDEX] * len(p.prefix_ids)
        if getattr(tokenizer, "is_fast", False):
            enc = tokenizer(p.text, add_special_tokens=False, return_offsets_mapping=True)
            for tid, (start, end) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
                hit = any(s < max(end, start + 1) and e > start for s, e in p.spans)
                ids.append(tid)
                labels.append(tid if hit else IGNORE_INDEX)
        else:
            bounds = sorted({0, len(p.text), *(b for span in p.spans for b in span)})
            for start, end in itertools.pairwise(bounds):
                piece = tokenizer(p.text[start:end], add_special_tokens=False)["input_ids"]
                hit = any(s <= start and end <= e for s, e in p.spans)
                ids += piece
                labels += piece if hit else [IGNORE_INDEX] * len(piece)
        lengths.append(len(ids))
        truncated += len(ids) > MAX_LENGTH
        ids, labels = ids[:MAX_LENGTH], labels[:MAX_LENGTH]
        n_trained = sum(label != IGNORE_INDEX for label in labels)
        if not n_trained:
            dropped.append(conv.source)
            continue
        tokens += len(ids)
        trained += n_trained
        examples.append({"input_ids": ids, "labels": labels})
    stats = {
        "rows": len(convs),
        "kept": len(examples),
        "truncated": truncated,
        "dropped": len(dropped),
        "dropped_sources": dropped[:20],
        "tokens": tokens,
        "trained_tokens": trained,
        "lengths": lengths,
        "max_length": MAX_LENGTH,
        "template": tmpl.name,
    }
    return examples, stats


@pytest.mark.parametrize(
    ("tok_name", "template", "offsets", "train_on"),
    [
        ("chat_tokenizer", "auto", True, "assistant"),
        ("smol_tokenizer", "auto", True, "assistant"),  # default system prompt injected
        ("base_tokenizer", "auto", True, "assistant"),  # vicuna, a bos before every row
        ("chat_tokenizer", "vicuna_v1.1", True, "assistant"),  # a bos put before each row
        ("chat_tokenizer", "auto", True, "all"),
        ("chat_tokenizer", "auto", False, "assistant"),
        ("base_tokenizer", "auto", False, "assistant"),
    ],
)
@pytest.mark.parametrize("num_proc", [1, 3])  # in this process; in three forked workers
def test_columns_equal_the_per_row_method(
    request, monkeypatch, tok_name, template, offsets, train_on, num_proc
):
    tokenizer = request.getfixturevalue(tok_name)
    tokenizer = tokenizer if offsets else NoOffsets(tokenizer)
    convs = _rows()
    # Small chunks: rows and dropped rows fall across many chunk boundaries.
    monkeypatch.setattr("ftx.data.tokens.CHUNK_ROWS", 37)
    monkeypatch.setattr("ftx.data.encoding.CHUNK_TEXTS", 16)
    data = tokenize_dataset(
        convs,
        tokenizer,
        max_length=MAX_LENGTH,
        template=template,
        train_on=train_on,
        num_proc=num_proc,
    )
    examples, stats = _per_row(convs, tokenizer, template, train_on)
    assert data.stats == stats
    assert data.examples == examples
    assert 0 < stats["truncated"] < stats["rows"]  # the rows cover both cases
    assert stats["dropped"] > 0 or train_on == "all"
    assert data.table.column_names == ["input_ids", "labels"] and data.table.num_rows == len(
        examples
    )


def test_the_trainers_dataset_is_what_from_list_gives(chat_tokenizer):  # noqa: F811
    from datasets import Dataset

    from ftx.data.token_cache import as_dataset

    data = tokenize_dataset(_rows(60), chat_tokenizer, max_length=MAX_LENGTH)
    listed = Dataset.from_list(data.examples)
    built = as_dataset(data)
    assert built.features == listed.features
    assert built.to_list() == listed.to_list()


def test_no_row_left_gives_empty_columns(chat_tokenizer):  # noqa: F811
    data = tokenize_dataset([], chat_tokenizer, max_length=MAX_LENGTH)
    assert data.examples == [] and data.table.num_rows == 0
    assert data.stats["rows"] == data.stats["kept"] == 0


def test_examples_still_build_tokenized_data():
    from ftx.data import TokenizedData

    data = TokenizedData(examples=[{"input_ids": [1], "labels": [1]}], stats={"kept": 1})
    assert data.table is None and data.examples[0]["input_ids"] == [1]
    with pytest.raises(ValueError):
        TokenizedData(stats={})


def test_a_refused_row_in_a_later_chunk_names_its_line(chat_tokenizer, monkeypatch):  # noqa: F811
    """Rendering runs ahead of encoding (`encode_chunks`): a row the template refuses still
    stops everything with its ``file:line``, whichever chunk it is in."""
    import copy
    import threading

    from ftx.errors import BadInput

    tokenizer = copy.deepcopy(chat_tokenizer)
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['content'] == 'refuse me' %}"
        "{{ raise_exception('no such order') }}{% endif %}"
        "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    convs = [c for c in _rows(120) if not c.is_text]
    convs[90].messages[-1]["content"] = "refuse me"
    monkeypatch.setattr("ftx.data.tokens.CHUNK_ROWS", 16)
    with pytest.raises(BadInput) as info:
        tokenize_dataset(convs, tokenizer, max_length=MAX_LENGTH, num_proc=2)
    assert f"{convs[90].source}: the model's chat template refused" in str(info.value)
    assert "no such order" in str(info.value)
    assert not [t for t in threading.enumerate() if t.name.startswith("ftx-encode")]


def test_only_the_first_builder_spills(chat_tokenizer, tmp_path):  # noqa: F811
    from ftx.data.columns import spill_to

    path = tmp_path / "tokens.arrow"
    with spill_to(path):
        first = tokenize_dataset(_rows(50), chat_tokenizer, max_length=MAX_LENGTH)
        second = tokenize_dataset(_rows(20), chat_tokenizer, max_length=MAX_LENGTH)
    assert first.spilled == path and second.spilled is None
    assert (
        first.examples
        == tokenize_dataset(_rows(50), chat_tokenizer, max_length=MAX_LENGTH).examples
    )
    assert tokenize_dataset(_rows(5), chat_tokenizer, max_length=MAX_LENGTH).spilled is None


def test_first_special_is_the_leftmost_then_the_first_listed():
    """One regex search (`ftx.data.templates._first_special`) finds what a find per special
    token found: the leftmost, and at one position the first listed (the longest)."""
    from ftx.data.templates import _first_special

    specials = ("<|im_end|>", "<|im_e", "</s>", "<s>", "|")
    rng = random.Random(1)
    pieces = [*specials, "a", " ", "<", "im_end|>"]
    for _ in range(500):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        start, limit = sorted(rng.randint(0, len(text)) for _ in range(2))
        best = None
        for token in specials:
            at = text.find(token, start, limit)
            if at >= 0 and (best is None or at < best[0]):
                best = (at, at + len(token))
        assert _first_special(text, start, limit, specials) == best, (text, start, limit)
    assert _first_special("abc", 0, 3, ()) is None
