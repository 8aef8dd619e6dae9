"""The normalised preference row types, and how one raw row becomes one (validated).

`PreferencePair` and `LabelledCompletion` are what `ftx.data.preference` loads;
`normalize_pair` and `normalize_labelled` turn one `ftx.data.readers.Row` in a known format
(`ftx.data.preference_formats`) into one, raising `BadInput` that names the file, the row and the
fix. Nothing here imports torch, transformers or datasets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ftx.data.conversation import Conversation, turn_order_problem
from ftx.data.formats import OPENAI_ROLES, VICUNA_ROLES, _kind, _message, missing
from ftx.data.preference_formats import BOOL_TEXT, PREFERENCE_EXPECTED
from ftx.data.readers import Row
from ftx.options import article

ROLE_NAMES = {**VICUNA_ROLES, **OPENAI_ROLES}
"""Every spelling of a role the supervised formats accept (ShareGPT's and OpenAI's)."""


@dataclass
class PreferencePair:
    """One preference pair: the model should prefer ``chosen`` to ``rejected`` after ``prompt``.

    Attributes:
        id: the row's ``id`` as a string, or None.
        prompt: messages ``{"role", "content"}`` before the answer (ends with a user message).
        chosen: the preferred answer, ``[{"role": "assistant", "content": ...}]``.
        rejected: the dispreferred answer, same shape.
        source: ``"<file name>:<line or row number>"``.
    """

    id: str | None
    prompt: list[dict]
    chosen: list[dict]
    rejected: list[dict]
    source: str = ""

    @property
    def identical(self) -> bool:
        """True when ``chosen`` and ``rejected`` are the same answer (the pair teaches nothing)."""
        return self.chosen == self.rejected

    def conversation(self, side: str = "chosen") -> Conversation:
        """The prompt followed by the ``chosen`` (or ``rejected``) answer, as a `Conversation`
        (e.g. to score exact match against the chosen answers)."""
        answer = {"chosen": self.chosen, "rejected": self.rejected}[side]
        return Conversation(messages=[*self.prompt, *answer], id=self.id, source=self.source)


@dataclass
class LabelledCompletion:
    """One KTO row: a ``completion`` (``[{"role": "assistant", ...}]``) after ``prompt``,
    desirable when ``label`` is True."""

    id: str | None
    prompt: list[dict]
    completion: list[dict]
    label: bool
    source: str = ""

    def conversation(self) -> Conversation:
        """The prompt followed by the completion, as a `Conversation`."""
        return Conversation(
            messages=[*self.prompt, *self.completion], id=self.id, source=self.source
        )


def normalize_pair(row: Row, fmt: str) -> PreferencePair:
    """One raw row in pair format `fmt` -> a validated `PreferencePair` (raises `BadInput`)."""
    data = _object(row, fmt)
    for key in ("chosen", "rejected"):
        if data.get(key) is None:
            raise row.error(missing(data, key), hint=_hint(fmt))
    if fmt == "preference_implicit":
        prompt, chosen, rejected = _implicit(row, data)
    else:
        if fmt == "preference":
            if data.get("prompt") is None:
                raise row.error(missing(data, "prompt"), hint=_hint(fmt))
            prompt = _messages(row, data["prompt"], "prompt", "user", fmt)
        else:
            prompt = _sharegpt_prompt(row, data)
        chosen = _answer(row, data["chosen"], "chosen", fmt)
        rejected = _answer(row, data["rejected"], "rejected", fmt)
    for answer in (chosen, rejected):
        problem = turn_order_problem([*prompt, *answer])
        if problem is not None:
            raise row.error(problem, hint=_hint(fmt))
    return PreferencePair(_row_id(data), prompt, chosen, rejected, row.source)


def normalize_labelled(row: Row) -> LabelledCompletion:
    """One raw KTO row -> a validated `LabelledCompletion` (raises `BadInput`)."""
    data = _object(row, "kto")
    for key in ("prompt", "completion", "label"):
        if data.get(key) is None:
            raise row.error(missing(data, key), hint=_hint("kto"))
    prompt = _messages(row, data["prompt"], "prompt", "user", "kto")
    completion = _answer(row, data["completion"], "completion", "kto")
    problem = turn_order_problem([*prompt, *completion])
    if problem is not None:
        raise row.error(problem, hint=_hint("kto"))
    label = _label(row, data["label"])
    return LabelledCompletion(_row_id(data), prompt, completion, label, row.source)


def _object(row: Row, fmt: str) -> dict:
    if not isinstance(row.data, dict):
        raise row.error(f"expected a JSON object (a row), got {_kind(row.data)}", hint=_hint(fmt))
    return row.data


def _row_id(data: dict) -> str | None:
    value = data.get("id")
    return None if value is None or value == "" else str(value)


def _label(row: Row, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if row.cells_are_text and isinstance(value, str) and value.strip().lower() in BOOL_TEXT:
        return BOOL_TEXT[value.strip().lower()]
    shown = repr(value) if isinstance(value, (str, int, float)) else _kind(value)
    raise row.error(
        f'"label" is {shown}, expected true or false',
        hint="write the label as a JSON boolean: true for a desirable completion, false for an "
        "undesirable one",
    )


def _implicit(row: Row, data: dict) -> tuple[list[dict], list[dict], list[dict]]:
    """Split two full conversations into their shared prompt and their differing answers."""
    sides = {}
    for key in ("chosen", "rejected"):
        value = _cell(row, data[key])
        if not isinstance(value, list):
            raise row.error(
                f'"{key}" is {_kind(value)}; without a "prompt", chosen and rejected must be '
                "conversations (lists of messages) that share the prompt",
                hint='add a "prompt" key for plain-text answers; ' + _hint("preference_implicit"),
            )
        sides[key] = _message_list(row, value, key, "preference_implicit")
    chosen, rejected = sides["chosen"], sides["rejected"]
    shared = 0
    limit = min(len(chosen), len(rejected)) - 1  # each side keeps at least its last message
    while shared < limit and chosen[shared] == rejected[shared]:
        shared += 1
    for key, messages in sides.items():
        if len(messages) - shared != 1:
            raise row.error(
                f"chosen and rejected differ from message {shared + 1} on, but {key} has "
                f"{len(messages) - shared} messages from there; the messages both share are the "
                "prompt, and each must then end with one assistant answer",
                hint=_hint("preference_implicit"),
            )
    answers = [_one_answer(row, [m[-1]], key, "preference_implicit") for key, m in sides.items()]
    return chosen[:shared], answers[0], answers[1]


def _sharegpt_prompt(row: Row, data: dict) -> list[dict]:
    key = "conversations" if "conversations" in data else "messages"
    value = _cell(row, data[key])
    if not isinstance(value, list):
        raise row.error(
            f'"{key}" is {_kind(value)}, expected a list of messages',
            hint=_hint("sharegpt_preference"),
        )
    prompt = _message_list(row, value, key, "sharegpt_preference")
    system = data.get("system")
    if system is not None and system != "":
        if not isinstance(system, str):
            raise row.error(f'"system" is {_kind(system)}, expected a string')
        prompt = [{"role": "system", "content": system}, *prompt]
    return prompt


def _answer(row: Row, value: Any, key: str, fmt: str) -> list[dict]:
    return _one_answer(row, _messages(row, value, key, "assistant", fmt), key, fmt)


def _one_answer(row: Row, messages: list[dict], key: str, fmt: str) -> list[dict]:
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        roles = ", ".join(m["role"] for m in messages) or "none"
        raise row.error(
            f'"{key}" must be one assistant message (the answer), got messages with roles: {roles}',
            hint="put earlier turns in the prompt; " + _hint(fmt),
        )
    if not messages[0]["content"].strip():
        raise row.error(f'the "{key}" answer is empty', hint="fix or remove the row")
    return messages


def _messages(row: Row, value: Any, key: str, role: str, fmt: str) -> list[dict]:
    """Text (one message with `role`), one message object, or a list of messages."""
    value = _cell(row, value)
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, dict):
        return _message_list(row, [value], key, fmt)
    if isinstance(value, list):
        return _message_list(row, value, key, fmt)
    raise row.error(
        f'"{key}" is {_kind(value)}, expected text, a message or a list of messages',
        hint=_hint(fmt),
    )


def _cell(row: Row, value: Any) -> Any:
    """A CSV cell holding a JSON list or object is that value; any other text stays text."""
    if row.cells_are_text and isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _message_list(row: Row, items: list, where: str, fmt: str) -> list[dict]:
    messages = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise row.error(
                f"{where} item {number} is {_kind(item)}, expected a message object",
                hint=_hint(fmt),
            )
        role_key, content_key = ("from", "value") if "from" in item else ("role", "content")
        if role_key not in item:
            raise row.error(f'{where} item {number} has no "role" key', hint=_hint(fmt))
        messages.append(_message(row, item, number, role_key, content_key, ROLE_NAMES, where))
    return messages


def _hint(fmt: str) -> str:
    example = PREFERENCE_EXPECTED.get(fmt, PREFERENCE_EXPECTED["sharegpt_preference"])
    return f"{article(fmt)} {fmt} row looks like {example}; fix or remove the row, or pass --format"
