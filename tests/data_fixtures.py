"""Fixtures and helpers shared by the data-layer tests (tests/test_data_*.py).

Import the fixtures into a test module (``from data_fixtures import chat_tokenizer``) to use them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftx.data import IGNORE_INDEX


class NoOffsets:
    """A tokenizer without offset mappings (like a slow tokenizer)."""

    is_fast = False

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, text, add_special_tokens=True):
        return self.inner(text, add_special_tokens=add_special_tokens)

    def __getattr__(self, name):
        return getattr(self.inner, name)


# SmolLM2-135M-Instruct's chat template: injects a default system prompt when there is none.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"chat": dir, "base": dir}``: tiny random Llamas (ChatML tokenizer / no template)."""
    from ftx.testing.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("tiny-data")
    return {
        "chat": make_tiny_model(root / "chat", chat_template=True),
        "base": make_tiny_model(root / "base", chat_template=False),
    }


@pytest.fixture(scope="session")
def chat_tokenizer(tiny_dirs):
    """ChatML template; eos == pad == <|im_end|> (the SmolLM2 situation)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dirs["chat"])


@pytest.fixture(scope="session")
def base_tokenizer(tiny_dirs):
    """No chat template, eos </s>, no pad token."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dirs["base"])


@pytest.fixture(scope="session")
def smol_tokenizer(tiny_dirs):
    """The chat tokenizer with SmolLM2's template (default system prompt injected)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dirs["chat"])
    tokenizer.chat_template = SMOLLM2_TEMPLATE
    return tokenizer


def trained_runs(tokenizer, ids: list[int], labels: list[int]) -> list[str]:
    """Decode each maximal run of trained positions; check labels copy the ids there."""
    assert len(ids) == len(labels)
    runs: list[list[int]] = []
    current: list[int] = []
    for token, label in zip(ids, labels, strict=True):
        if label == IGNORE_INDEX:
            if current:
                runs.append(current)
                current = []
            continue
        assert label == token, "a trained label must equal its input id"
        current.append(token)
    if current:
        runs.append(current)
    return [tokenizer.decode(run, clean_up_tokenization_spaces=False) for run in runs]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def vicuna_row(*turns: tuple[str, str], row_id: str | None = "r1") -> dict:
    row: dict = {"conversations": [{"from": who, "value": text} for who, text in turns]}
    if row_id is not None:
        row["id"] = row_id
    return row
