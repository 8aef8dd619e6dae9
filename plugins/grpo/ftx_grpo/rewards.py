"""The rewards that come with ftx-grpo, each an entry point in group ``ftx.rewards`` exactly as
a third party's would be (``objective.rewards=[exact, format]``).

Every one has TRL's reward signature (``prompts, completions, completion_ids, **kwargs`` -> one
float per completion) and reads its settings from the run's ``objective:`` options
(``ftx_options``) or, per row, from a data column of the same name:

* ``exact``: 1.0 when the completion equals the row's ``reference`` column
  (``objective.reference_column``) after stripping whitespace, else 0.0;
* ``format``: 1.0 when the whole completion matches the regular expression
  ``objective.format_pattern`` (or the row's ``format_pattern`` column), else 0.0;
* ``json_valid``: 1.0 when the completion parses as JSON, else 0.0;
* ``json_field``: 1.0 when the completion parses as a JSON object whose
  ``objective.json_field`` equals the reference (parsed as JSON when it parses), else 0.0;
  without a field, the whole value is compared;
* ``length``: 0.0 up to ``objective.length_limit`` tokens, falling linearly to -1.0 at twice
  that (a length penalty).

A row without what a reward needs (a ``reference`` that is missing or null) raises ValueError
naming the column: ftx reports it, with the row, before any model loads (the rewards are called
on the rows then). Importing this module
imports no torch.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from ftx.rewards import completion_text

Options = dict[str, Any]


def _options(kwargs: dict[str, Any]) -> Options:
    return kwargs.get("ftx_options") or {}


def _per_row(kwargs: dict[str, Any], key: str, option: str, count: int) -> list[Any]:
    """The value of ``key`` for each completion: its data column, else the option."""
    column = kwargs.get(key)
    fallback = _options(kwargs).get(option)
    if column is None:
        return [fallback] * count
    return [fallback if value is None else value for value in column]


def _references(kwargs: dict[str, Any], count: int, reward: str) -> list[str]:
    column = _options(kwargs).get("reference_column") or "reference"
    values = kwargs.get(column)
    if values is None:
        raise ValueError(
            f"the {reward} reward compares against a {column!r} column, which the data rows do "
            "not have (set objective.reference_column to the column holding the answers)"
        )
    if any(value is None for value in values[:count]):
        raise ValueError(
            f"the {reward} reward compares against the {column!r} column, which is missing or "
            "null in this row (give every row its answer, or leave the row out)"
        )
    return [str(value) for value in values][:count]


def exact(prompts: list, completions: list, completion_ids: list, **kwargs: Any) -> list[float]:
    """1.0 where the completion equals the reference column (whitespace stripped), else 0.0."""
    refs = _references(kwargs, len(completions), "exact")
    return [
        float(completion_text(c).strip() == r.strip())
        for c, r in zip(completions, refs, strict=True)
    ]


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error as exc:
        raise ValueError(f"format_pattern {pattern!r} is not a regular expression: {exc}") from None


def format_match(
    prompts: list, completions: list, completion_ids: list, **kwargs: Any
) -> list[float]:
    """1.0 where the whole completion (stripped) matches the format pattern, else 0.0."""
    patterns = _per_row(kwargs, "format_pattern", "format_pattern", len(completions))
    out = []
    for completion, pattern in zip(completions, patterns, strict=True):
        if not pattern:
            raise ValueError(
                "the format reward needs a regular expression: objective.format_pattern, or a "
                "format_pattern column"
            )
        out.append(
            float(
                _compiled(str(pattern)).fullmatch(completion_text(completion).strip()) is not None
            )
        )
    return out


def _parsed(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text.strip())
    except ValueError:
        return False, None


def json_valid(
    prompts: list, completions: list, completion_ids: list, **kwargs: Any
) -> list[float]:
    """1.0 where the completion is valid JSON, else 0.0."""
    return [float(_parsed(completion_text(c))[0]) for c in completions]


def json_field(
    prompts: list, completions: list, completion_ids: list, **kwargs: Any
) -> list[float]:
    """1.0 where the completion's JSON ``objective.json_field`` (or whole value) equals the
    reference (as JSON when the reference parses), else 0.0."""
    refs = _references(kwargs, len(completions), "json_field")
    fields = _per_row(kwargs, "json_field", "json_field", len(completions))
    out = []
    for completion, ref, key in zip(completions, refs, fields, strict=True):
        ok, value = _parsed(completion_text(completion))
        if ok and key:
            ok = isinstance(value, dict) and key in value
            value = value.get(key) if ok else None
        ref_ok, ref_value = _parsed(ref)
        out.append(float(ok and value == (ref_value if ref_ok else ref)))
    return out


def length(prompts: list, completions: list, completion_ids: list, **kwargs: Any) -> list[float]:
    """0.0 up to ``objective.length_limit`` tokens, then down linearly to -1.0 at twice it."""
    limit = max(1, int(_options(kwargs).get("length_limit") or 32))
    return [-min(1.0, max(0, len(ids) - limit) / limit) for ids in completion_ids]
