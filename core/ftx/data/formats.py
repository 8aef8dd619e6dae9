"""Data formats: detect which one a file uses and normalise every row to a `Conversation`.

=====================  ======================================================================
format                 a row looks like
=====================  ======================================================================
``vicuna``             ``{"id": ..., "conversations": [{"from": "human", "value": ...},
                       {"from": "gpt", "value": ...}]}`` (FastChat / ShareGPT). ``from`` may
                       also be user/assistant/chatgpt/bing/bard/model/system, and turns may use
                       ``role``/``content`` instead of ``from``/``value``.
``openai``             ``{"messages": [{"role": "user", "content": ...}, ...]}``; ``developer``
                       counts as ``system``; content may be a list of ``{"type": "text"}`` parts.
``alpaca``             ``{"instruction": ..., "input": ... (optional), "output": ...,
                       "system": ... (optional)}``; the user message is the instruction, then a
                       blank line and the input when there is one.
``prompt_completion``  ``{"prompt": ..., "completion": ...}``, each a string or a list of
                       messages.
``text``               ``{"text": ...}``: continued pre-training, every token is trained.
=====================  ======================================================================

`load_conversations` reads a path (see `ftx.data.readers`), detects the format per file from the
first row's keys unless one is given, and validates every row. Every problem raises `BadInput`
with one message naming the file, the line/row, what was expected and how to fix it.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from ftx.data.conversation import Conversation, turn_order_problem
from ftx.data.preference_formats import looks_like_preference, not_conversations
from ftx.data.readers import Row, iter_file, no_rows
from ftx.data.readers import data_files as _data_files
from ftx.errors import BadInput
from ftx.options import article

FORMATS = ("vicuna", "openai", "alpaca", "prompt_completion", "text")
AUTO = "auto"

EXPECTED = {
    "vicuna": '{"conversations": [{"from": "human", "value": "..."}, '
    '{"from": "gpt", "value": "..."}]}',
    "openai": '{"messages": [{"role": "user", "content": "..."}, '
    '{"role": "assistant", "content": "..."}]}',
    "alpaca": '{"instruction": "...", "input": "... (optional)", "output": "..."}',
    "prompt_completion": '{"prompt": "...", "completion": "..."}',
    "text": '{"text": "..."}',
}

VICUNA_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "system": "system",
}
OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def check_format(fmt: str) -> str:
    """Return `fmt` if it is ``"auto"`` or a known format name, else raise `BadInput`."""
    if fmt == AUTO or fmt in FORMATS:
        return fmt
    close = difflib.get_close_matches(str(fmt), FORMATS, n=1)
    raise BadInput(
        f"unknown data format {fmt!r}"
        + (f" (did you mean {close[0]!r}?)" if close else "")
        + f"; expected auto or one of: {', '.join(FORMATS)}"
    )


def detect_format(row: Row) -> str:
    """The format a row's keys indicate; raises `BadInput` when they match none."""
    data = row.data
    if not isinstance(data, dict):
        raise row.error(f"expected a JSON object (a row), got {_kind(data)}", hint=_shapes_hint())
    shape = looks_like_preference(data, cells_are_text=row.cells_are_text)
    if shape is not None:
        raise row.error(*not_conversations(shape))
    if "conversations" in data:
        return "vicuna"
    if "messages" in data:
        return "openai"
    if "instruction" in data:
        return "alpaca"
    if "prompt" in data or "completion" in data:
        return "prompt_completion"
    if "text" in data:
        return "text"
    keys = ", ".join(repr(k) for k in list(data)[:8]) or "none"
    raise row.error(f"cannot tell the data format from the keys ({keys})", hint=_shapes_hint())


def _shapes_hint() -> str:
    """The shapes a supervised row can have, one example each."""
    return (
        "rows need one of: "
        + "; ".join(f"{fmt}: {example}" for fmt, example in EXPECTED.items())
        + " (or pass --format)"
    )


def load_conversations(path: str | Path, fmt: str = AUTO) -> list[Conversation]:
    """Read, normalise and validate every row under `path`.

    Args:
        path: a .json/.jsonl/.csv/.parquet file or a directory of them (read in sorted order).
        fmt: ``"auto"`` (detect per file from its first row) or one of `FORMATS`.

    Returns:
        One `Conversation` per row, in file order.

    Raises:
        BadInput: unknown format name, missing/unreadable path, malformed file or row, missing
            key, unknown role, impossible turn order, empty file. The message names the file and
            the 1-based line (JSONL) or row (JSON, CSV, Parquet).
    """
    return load_with_formats(path, fmt)[0]


def load_with_formats(
    path: str | Path, fmt: str = AUTO
) -> tuple[list[Conversation], dict[str, str]]:
    """`load_conversations`, plus ``{file path: format used}`` for every file read."""
    check_format(fmt)
    conversations: list[Conversation] = []
    formats: dict[str, str] = {}
    for file in _data_files(path):
        rows = iter_file(file)  # a row at a time: the raw rows are never all held
        first = next(rows, None)
        if first is None:
            raise no_rows(file)
        formats[str(file)] = file_fmt = detect_format(first) if fmt == AUTO else fmt
        conversations.append(normalize(first, file_fmt))
        conversations.extend(normalize(row, file_fmt) for row in rows)
    return conversations, formats


def normalize(row: Row, fmt: str) -> Conversation:
    """One raw row in format `fmt` -> a validated `Conversation` (raises `BadInput`)."""
    data = row.data
    if not isinstance(data, dict):
        raise row.error(f"expected a JSON object (a row), got {_kind(data)}", hint=_hint(fmt))
    row_id = data.get("id")
    row_id = None if row_id is None or row_id == "" else str(row_id)
    if fmt == "text":
        text = _string(row, data, "text", fmt)
        if not text.strip():
            raise row.error('"text" is empty', hint="remove the row")
        return Conversation(messages=[], id=row_id, source=row.source, text=text)
    messages = _NORMALIZERS[fmt](row, data)
    problem = turn_order_problem(messages)
    if problem is not None:
        raise row.error(problem, hint=_hint(fmt))
    return Conversation(messages=messages, id=row_id, source=row.source)


def _vicuna(row: Row, data: dict) -> list[dict]:
    turns = _list(row, data, "conversations", "vicuna")
    messages = []
    for number, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            raise row.error(
                f"conversations turn {number} is {_kind(turn)}, expected an object",
                hint=_hint("vicuna"),
            )
        role_key, content_key = ("role", "content") if "from" not in turn else ("from", "value")
        if role_key not in turn:
            raise row.error(f'conversations turn {number} has no "from" key', hint=_hint("vicuna"))
        messages.append(
            _message(row, turn, number, role_key, content_key, VICUNA_ROLES, "conversations")
        )
    return messages


def _openai(row: Row, data: dict) -> list[dict]:
    return _message_list(row, _list(row, data, "messages", "openai"), "messages", "openai")


def _message_list(row: Row, items: list, where: str, fmt: str) -> list[dict]:
    messages = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise row.error(
                f"{where} item {number} is {_kind(item)}, expected an object", hint=_hint(fmt)
            )
        if "role" not in item:
            raise row.error(f'{where} item {number} has no "role" key', hint=_hint(fmt))
        messages.append(_message(row, item, number, "role", "content", OPENAI_ROLES, where))
    return messages


def _alpaca(row: Row, data: dict) -> list[dict]:
    instruction = _string(row, data, "instruction", "alpaca")
    output = _string(row, data, "output", "alpaca")
    extra = _optional_string(row, data, "input", "alpaca")
    system = _optional_string(row, data, "system", "alpaca")
    user = f"{instruction}\n\n{extra}" if extra else instruction
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": user}, {"role": "assistant", "content": output}]


def _prompt_completion(row: Row, data: dict) -> list[dict]:
    if data.get("completion") is None and data.get("prompt") is not None:
        raise row.error(
            missing(data, "completion"),
            hint=f"{_hint('prompt_completion')}; prompt-only rows, whose answers are generated "
            "while training, are for --objective grpo",
        )
    return [
        *_side(row, data, "prompt", "user"),
        *_side(row, data, "completion", "assistant"),
    ]


def _side(row: Row, data: dict, key: str, role: str) -> list[dict]:
    if key not in data or data[key] is None:
        raise row.error(missing(data, key), hint=_hint("prompt_completion"))
    value = data[key]
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, list):
        return _message_list(row, value, key, "prompt_completion")
    raise row.error(
        f'"{key}" is {_kind(value)}, expected a string or a list of messages',
        hint=_hint("prompt_completion"),
    )


_NORMALIZERS = {
    "vicuna": _vicuna,
    "openai": _openai,
    "alpaca": _alpaca,
    "prompt_completion": _prompt_completion,
}


def _message(
    row: Row,
    item: dict,
    number: int,
    role_key: str,
    content_key: str,
    roles: dict[str, str],
    where: str,
) -> dict:
    raw_role = item[role_key]
    role = roles.get(raw_role.lower()) if isinstance(raw_role, str) else None
    if role is None:
        raise row.error(
            f"{where} item {number} has unknown role {raw_role!r}; "
            f"expected one of: {', '.join(roles)}",
            hint="map other roles (tool, function, ...) to these or drop those messages",
        )
    if content_key not in item:
        raise row.error(f'{where} item {number} has no "{content_key}" key')
    content = _content(item[content_key])
    if content is None:
        raise row.error(
            f'{where} item {number}: "{content_key}" is {_kind(item[content_key])}, '
            "expected a string",
        )
    return {"role": role, "content": content}


def _content(value: Any) -> str | None:
    """A message's text: a string, or the joined text of OpenAI content parts; else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        texts = []
        for part in value:
            if not (isinstance(part, dict) and part.get("type") == "text"):
                return None
            if not isinstance(part.get("text"), str):
                return None
            texts.append(part["text"])
        return "".join(texts)
    return None


def _list(row: Row, data: dict, key: str, fmt: str) -> list:
    if key not in data or data[key] is None:
        raise row.error(missing(data, key), hint=_hint(fmt))
    value = data[key]
    if isinstance(value, str) and row.cells_are_text:
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise row.error(
                f'the "{key}" cell is not valid JSON ({err.msg} at column {err.colno})',
                hint=f"in CSV files the {key} column holds a JSON list",
            ) from None
    if not isinstance(value, list):
        raise row.error(f'"{key}" is {_kind(value)}, expected a list', hint=_hint(fmt))
    return value


def _string(row: Row, data: dict, key: str, fmt: str) -> str:
    if key not in data or data[key] is None:
        raise row.error(missing(data, key), hint=_hint(fmt))
    value = data[key]
    if not isinstance(value, str):
        raise row.error(f'"{key}" is {_kind(value)}, expected a string', hint=_hint(fmt))
    return value


def _optional_string(row: Row, data: dict, key: str, fmt: str) -> str:
    if data.get(key) is None:
        return ""
    return _string(row, data, key, fmt)


def _hint(fmt: str) -> str:
    example = EXPECTED[fmt]
    return f"{article(fmt)} {fmt} row looks like {example}; fix or remove the row, or pass --format"


def missing(data: dict, key: str) -> str:
    """What is wrong with a required ``key`` that has no value: absent, or present as null."""
    return f'"{key}" is null' if key in data else f'missing "{key}"'


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return f"a number ({value!r})" if isinstance(value, (int, float)) else type(value).__name__
