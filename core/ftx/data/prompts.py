"""Prompt-only data for objectives that generate their own answers (``grpo``): read, validate,
render.

A row is a prompt plus any other columns::

    {"prompt": "Order code: two large teas", "reference": "2xL-TEA"}
    {"prompt": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}], ...}
    {"messages": [{"role": "user", "content": "..."}], "reference": "..."}

``prompt`` is text (one user message) or a list of messages (``role``/``content`` or
``from``/``value``); ``messages`` or ``conversations`` may hold the list instead. The prompt must
end with a user turn: a row whose prompt already ends with the answer (an assistant turn) is
refused, naming the row, because the model is to generate that answer (move it to a column such
as ``reference`` for a reward to compare against). Every other column (``reference``, ``answer``,
``format_pattern`` …) is kept as it is and reaches the reward functions as a keyword argument.

`load_prompt_rows` reads the same files as `ftx.data.load_conversations`; `tokenize_prompts`
renders each prompt with the chat template (or a fallback template) as generation will see it and
counts tokens. Nothing here imports torch, transformers or datasets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftx.data.conversation import Conversation, turn_order_problem
from ftx.data.formats import _kind, _message
from ftx.data.preference_rows import ROLE_NAMES, _cell
from ftx.data.readers import Row, read_rows
from ftx.errors import BadInput

PROMPT_KEYS = ("prompt", "messages", "conversations")
"""Where a prompt row keeps its prompt, in the order they are looked for."""
EXPECTED = '{"prompt": "...", "reference": "..."} or {"prompt": [{"role": "user", ...}], ...}'
HINT = f"a prompt row looks like {EXPECTED}; fix or remove the row"
INTERNAL_COLUMNS = ("prompt", "ftx_row")
"""Columns ftx itself puts in every prompt example (the prompt, and the row's ``file:line``)."""


@dataclass
class PromptRow:
    """One prompt-only row.

    Attributes:
        id: the row's ``id`` as a string, or None.
        prompt: messages ``{"role", "content"}``, ending with a user message.
        columns: every other column of the row (``reference`` …), as read.
        source: ``"<file name>:<line or row number>"``.
    """

    id: str | None
    prompt: list[dict]
    columns: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def conversation(self, answer_column: str = "reference") -> Conversation | None:
        """The prompt followed by the text in ``answer_column`` as the assistant's answer (to
        score exact match against it); None when the row has no such text."""
        answer = self.columns.get(answer_column)
        if not isinstance(answer, str) or not answer.strip():
            return None
        messages = [*self.prompt, {"role": "assistant", "content": answer}]
        return Conversation(messages=messages, id=self.id, source=self.source)


def load_prompt_rows(path: str | Path) -> list[PromptRow]:
    """Read and validate every row under ``path`` (a .json/.jsonl/.csv/.parquet file or a
    directory of them). Raises `BadInput` naming the file and line/row for a row without a
    prompt, a malformed prompt, or a prompt that already ends with an answer."""
    return [normalize_prompt(row) for row in read_rows(path)]


def normalize_prompt(row: Row) -> PromptRow:
    """One raw row -> a validated `PromptRow` (raises `BadInput`)."""
    data = row.data
    if not isinstance(data, dict):
        raise row.error(f"expected a JSON object (a row), got {_kind(data)}", hint=HINT)
    key = next((k for k in PROMPT_KEYS if data.get(k) is not None), None)
    if key is None:
        raise row.error(f"no prompt: expected one of {', '.join(PROMPT_KEYS)}", hint=HINT)
    prompt = _prompt_messages(row, _cell(row, data[key]), key)
    if not prompt:
        raise row.error(f'"{key}" is empty', hint=HINT)
    if prompt[-1]["role"] == "assistant":
        raise row.error(
            f'the prompt ("{key}") already ends with an answer (an assistant turn); the model '
            "is to generate it",
            hint="move the answer to a column such as reference (the exact reward compares "
            "against it) and end the prompt with the user's turn",
        )
    problem = turn_order_problem([*prompt, {"role": "assistant", "content": "x"}])
    if problem is not None:
        raise row.error(problem, hint=HINT)
    if not prompt[-1]["content"].strip():
        raise row.error("the last user message is empty", hint=HINT)
    row_id = data.get("id")
    columns = {k: v for k, v in data.items() if k not in (key, "id")}
    return PromptRow(
        id=None if row_id in (None, "") else str(row_id),
        prompt=prompt,
        columns=columns,
        source=row.source,
    )


def _prompt_messages(row: Row, value: Any, key: str) -> list[dict]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}] if value.strip() else []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise row.error(f'"{key}" is {_kind(value)}, expected text or a list of messages', HINT)
    messages = []
    for number, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise row.error(f"{key} item {number} is {_kind(item)}, expected a message", HINT)
        role_key, content_key = ("from", "value") if "from" in item else ("role", "content")
        if role_key not in item:
            raise row.error(f'{key} item {number} has no "role" key', hint=HINT)
        messages.append(_message(row, item, number, role_key, content_key, ROLE_NAMES, key))
    return messages


def prompt_example(row: PromptRow) -> dict[str, Any]:
    """The example the trainer (and the rewards) see for ``row``, before tokenisation: its
    columns, ``prompt`` (the messages) and ``ftx_row`` (its ``file:line``)."""
    return {**row.columns, "prompt": row.prompt, "ftx_row": row.source}


@dataclass
class TokenizedPrompts:
    """What `tokenize_prompts` returns: ``examples`` (one dict per kept row: ``prompt`` (the
    messages), ``ftx_row`` (its ``file:line``), ``prompt_ids`` and the row's other columns) and
    ``stats`` (``kept``, ``dropped``, ``tokens`` (prompt tokens), ``truncated`` (always 0:
    prompts are dropped, never cut), ``columns``)."""

    examples: list[dict[str, Any]]
    stats: dict[str, Any]


def tokenize_prompts(
    rows: list[PromptRow], tokenizer: Any, *, max_length: int, template: str = "auto"
) -> TokenizedPrompts:
    """Render every prompt as generation sees it (ftx's chat template or fallback template,
    with the assistant's generation prompt) and tokenise it; a prompt longer than
    ``max_length`` tokens leaves no room for an answer and is dropped (counted)."""
    from ftx.data.masking import prompt_for_generation
    from ftx.data.templates import template_for

    tmpl = template_for(tokenizer, template)
    examples, tokens, dropped = [], 0, 0
    for row in rows:
        conv = Conversation(
            messages=[*row.prompt, {"role": "assistant", "content": ""}], source=row.source
        )
        ids, _ = prompt_for_generation(conv, tokenizer, tmpl)
        if len(ids) >= max_length:
            dropped += 1
            continue
        tokens += len(ids)
        examples.append({**prompt_example(row), "prompt_ids": ids})
    stats = {
        "kept": len(examples),
        "dropped": dropped,
        "tokens": tokens,
        "truncated": 0,
        "columns": prompt_columns(rows),
    }
    return TokenizedPrompts(examples, stats)


def prompt_columns(rows: list[PromptRow]) -> dict[str, int]:
    """``{column: rows that have it}`` for the columns beside the prompt (what the rewards
    receive), in first-seen order."""
    counts: dict[str, int] = {}
    for row in rows:
        for key, value in row.columns.items():
            if value is not None:
                counts[key] = counts.get(key, 0) + 1
    return counts


def check_no_reserved_columns(rows: list[PromptRow], reserved: tuple[str, ...]) -> None:
    """A column named like an argument the trainer passes rewards itself (``completions`` …)
    would be overwritten: BadInput naming the first row that has one."""
    for row in rows:
        clash = [k for k in row.columns if k in reserved]
        if clash:
            raise BadInput(
                f"{row.source}: column {clash[0]!r} has the name of an argument every reward "
                "receives from the trainer",
                hint=f"rename the column (reserved: {', '.join(reserved)})",
            )
