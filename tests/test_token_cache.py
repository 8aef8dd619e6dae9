"""The token cache (`ftx.data.token_cache`): a second run on the same rows reads its tokens from
disk, anything that changes the tokens misses, a damaged entry is rebuilt, the size is bounded."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from ftx.data import Conversation
from ftx.data.token_cache import cache_key, tokenized_dataset
from ftx.objectives.supervised import tokenize_rows
from tests.data_fixtures import chat_tokenizer, tiny_dirs  # noqa: F401

SETTINGS = {"max_length": 64, "template": "auto", "train_on": "assistant", "eval_limit": None}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FTX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "tokens"


def _rows(n: int = 12, answer: str = "ok") -> list[Conversation]:
    return [
        Conversation(
            messages=[
                {"role": "user", "content": f"question {i}"},
                {"role": "assistant", "content": f"{answer} {i}"},
            ],
            source=f"rows.jsonl:{i + 1}",
        )
        for i in range(n)
    ]


def _dataset(rows, tokenizer, settings=SETTINGS, calls=None):
    def tokenize(rows):
        if calls is not None:
            calls.append(len(rows))
        return tokenize_rows(rows, tokenizer, settings)

    return tokenized_dataset(rows, tokenizer, settings, objective="supervised", tokenize=tokenize)


def test_second_call_reads_the_stored_tokens(cache, chat_tokenizer):  # noqa: F811
    calls: list[int] = []
    first, stats = _dataset(_rows(), chat_tokenizer, calls=calls)
    assert stats["token_cache"] == "stored" and calls == [12]
    second, again = _dataset(_rows(), chat_tokenizer, calls=calls)
    assert again["token_cache"] == "hit" and calls == [12]  # not tokenised again
    assert second.to_list() == first.to_list()
    expected = tokenize_rows(_rows(), chat_tokenizer, SETTINGS)
    assert second.to_list() == expected.examples
    assert {k: v for k, v in again.items() if k != "token_cache"} == json.loads(
        json.dumps(expected.stats)
    )


def test_whatever_changes_the_tokens_changes_the_key(chat_tokenizer):  # noqa: F811
    def key(rows=None, tokenizer=chat_tokenizer, settings=SETTINGS, objective="supervised"):
        return cache_key(
            rows or _rows(), tokenizer, settings, objective=objective, code=tokenize_rows
        )

    other_template = copy.deepcopy(chat_tokenizer)
    other_template.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    base = key()
    assert key() == base
    assert key(rows=_rows(answer="changed")) != base
    assert key(settings={**SETTINGS, "max_length": 32}) != base
    assert key(settings={**SETTINGS, "train_on": "all"}) != base
    assert key(tokenizer=other_template) != base
    assert key(objective="sft-other") != base
    # Keys that choose or score rows, not tokenise them, share the entry.
    assert key(settings={**SETTINGS, "eval_limit": 5, "packing": "true"}) == base


def test_a_damaged_entry_is_rebuilt(cache, chat_tokenizer):  # noqa: F811
    _dataset(_rows(), chat_tokenizer)
    (entry,) = cache.iterdir()
    for arrow in entry.glob("*.arrow"):
        arrow.write_bytes(b"not arrow")
    calls: list[int] = []
    dataset, stats = _dataset(_rows(), chat_tokenizer, calls=calls)
    assert stats["token_cache"] == "stored" and calls == [12]
    assert dataset.to_list() == tokenize_rows(_rows(), chat_tokenizer, SETTINGS).examples


def test_switched_off_it_writes_nothing(cache, chat_tokenizer):  # noqa: F811
    settings = {**SETTINGS}
    dataset, stats = tokenized_dataset(
        _rows(),
        chat_tokenizer,
        settings,
        objective="supervised",
        tokenize=lambda rows: tokenize_rows(rows, chat_tokenizer, settings),
        use_cache=False,
    )
    assert stats["token_cache"] == "off" and len(dataset) == 12
    assert not cache.exists()


def test_least_recently_used_entries_go_when_over_the_limit(cache, chat_tokenizer, monkeypatch):  # noqa: F811
    monkeypatch.setenv("FTX_TOKEN_CACHE_GB", str(1 / 2**30))  # one byte: keep only the newest
    _dataset(_rows(answer="a"), chat_tokenizer)
    _dataset(_rows(answer="b"), chat_tokenizer)
    entries = [p for p in cache.iterdir() if p.is_dir()]
    assert len(entries) == 1
    _, stats = _dataset(_rows(answer="b"), chat_tokenizer)
    assert stats["token_cache"] == "hit"


def test_a_second_run_trains_on_the_cached_tokens(
    tmp_path, monkeypatch, ftx_cli, ftx_tiny_model, ftx_tiny_data
):
    """The runner's path: the second of two identical tiny runs reads the tokens from the cache
    and trains to the same losses."""
    monkeypatch.setenv("FTX_CACHE", str(tmp_path / "cache"))

    def run(name: str) -> Path:
        out = tmp_path / name
        result = ftx_cli(
            "run", "--plugin", "fft", "--model", ftx_tiny_model, "--data", ftx_tiny_data["train"],
            "--output", out, "--set", "train.max_steps=3", "--set", "train.logging_steps=1",
            "--set", f"data.eval={ftx_tiny_data['eval']}", "--set", "data.eval_limit=2",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return out

    first, second = run("first"), run("second")
    summaries = [json.loads((r / "summary.json").read_text()) for r in (first, second)]
    assert [s["data"]["token_cache"] for s in summaries] == ["stored", "hit"]
    assert summaries[0]["data"]["tokens"] == summaries[1]["data"]["tokens"]
    losses = [
        [
            row["loss"]
            for row in map(json.loads, (r / "metrics.jsonl").read_text().splitlines())
            if "loss" in row
        ]  # training rows; validation rows carry eval_loss
        for r in (first, second)
    ]
    assert len(losses[0]) == 3 and losses[0] == losses[1]


def test_ftx_tokens_are_written_as_they_come_other_objectives_once_tokenised(
    cache,
    chat_tokenizer,  # noqa: F811
    monkeypatch,
):
    """ftx's tokeniser spills its Arrow file into the entry while it tokenises (nothing written
    after); an objective returning only ``examples`` gets the same entry layout, and both read
    back as what ``Dataset.from_list`` gives."""
    from types import SimpleNamespace

    import ftx.data.token_cache as token_cache

    monkeypatch.setattr(token_cache, "_write_arrow", lambda *a: pytest.fail("not spilled"))
    dataset, stats = _dataset(_rows(), chat_tokenizer)
    assert stats["token_cache"] == "stored"
    assert dataset.to_list() == tokenize_rows(_rows(), chat_tokenizer, SETTINGS).examples
    monkeypatch.undo()
    monkeypatch.setenv("FTX_CACHE", str(cache.parent))

    examples = [{"prompt_ids": [1, 2], "label": True}, {"prompt_ids": [3], "label": False}]

    def tokenize(rows):
        return SimpleNamespace(examples=examples, stats={"kept": 2})

    for expected in ("stored", "hit"):
        dataset, stats = tokenized_dataset(
            _rows(), chat_tokenizer, SETTINGS, objective="pairs", tokenize=tokenize
        )
        assert stats["token_cache"] == expected and dataset.to_list() == examples
    assert sorted(p.name for entry in cache.iterdir() for p in entry.iterdir()) == [
        "stats.json",
        "stats.json",
        "tokens.arrow",
        "tokens.arrow",
    ]


def test_data_num_proc_reaches_the_tokeniser_and_changes_no_token(
    tmp_path, monkeypatch, ftx_cli, ftx_tiny_model, ftx_tiny_data
):
    """``--set data.num_proc=2`` renders in two workers (small chunks so that there are
    several) and the run sees the same tokens and losses as with ``num_proc=1``; neither is
    read from the other's cache (each run stores its own tokens: token_cache off)."""
    import ftx.data.tokens

    monkeypatch.setattr("ftx.data.tokens.CHUNK_ROWS", 4)
    asked = []
    original = ftx.data.tokens.marked_chunks

    def spy(chunks, mark, workers):
        asked.append(workers)
        return original(chunks, mark, workers)

    monkeypatch.setattr("ftx.data.tokens.marked_chunks", spy)

    def run(num_proc: str) -> dict:
        out = tmp_path / f"run-{num_proc}"
        result = ftx_cli(
            "run", "--plugin", "fft", "--model", ftx_tiny_model, "--data", ftx_tiny_data["train"],
            "--output", out, "--set", "train.max_steps=2", "--set", "train.logging_steps=1",
            "--set", "data.token_cache=false", "--set", f"data.num_proc={num_proc}",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        summary = json.loads((out / "summary.json").read_text())
        summary["losses"] = [
            row["loss"]
            for row in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
            if "loss" in row
        ]
        return summary

    one, two = run("1"), run("2")
    assert asked[0] == 1 and asked[-1] == 2
    assert one["data"]["tokens"] == two["data"]["tokens"] and one["losses"] == two["losses"]
