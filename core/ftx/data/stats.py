"""The numbers behind ``ftx data check``: what a data file holds and what training will see.

Conversations get `data_check_report`'s supervised numbers; preference pairs and KTO rows
(recognised by `ftx.data.data_kind`) get `preference_check_report`'s.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ftx.data.conversation import require_answers
from ftx.data.formats import AUTO, load_with_formats
from ftx.data.preference import data_kind, load_labelled_with_formats, load_pairs_with_formats
from ftx.data.preference_tokens import tokenize_labelled, tokenize_pairs
from ftx.data.tokens import tokenize_dataset


def data_check_report(
    path: str | Path,
    tokenizer: Any,
    *,
    max_length: int,
    fmt: str = AUTO,
    template: str = "auto",
    train_on: str = "assistant",
    truncation_mode: str = "keep_end",
) -> dict[str, Any]:
    """Load, validate and tokenise `path`; describe it.

    Preference data (pairs or KTO rows, see `ftx.data.data_kind`) is described by
    `preference_check_report` (`truncation_mode` applies there). For conversations, returns a
    JSON-ready dict:

    * ``path``, ``files`` (``{file: format}``), ``format`` (the format, or the distinct formats
      joined by ``", "`` when files differ), ``template`` (the chat template used);
    * ``rows``; ``turns``: ``{"mean", "max"}`` assistant turns per row (0 for text rows);
    * ``tokens``: ``{"p50", "p95", "max", "mean", "total"}`` of the per-row length in tokens
      before truncation (nearest-rank percentiles);
    * ``max_length``; ``truncated`` and ``truncated_pct`` (rows longer than `max_length`);
      ``dropped`` (rows with no trained token left after truncation);
    * ``trained_tokens`` and ``trained_pct``: tokens with a label, in percent of the tokens
      training sees (after truncation).

    Raises `BadInput` for any problem in the data (see `ftx.data.load_conversations`).
    """
    kind = data_kind(path, fmt)
    if kind == "prompts":
        return prompt_check_report(path, tokenizer, max_length=max_length, template=template)
    if kind != "conversations":
        return preference_check_report(
            path,
            tokenizer,
            max_length=max_length,
            fmt=fmt,
            template=template,
            truncation_mode=truncation_mode,
        )
    convs, formats = load_with_formats(path, fmt)
    require_answers(convs)
    data = tokenize_dataset(
        convs, tokenizer, max_length=max_length, template=template, train_on=train_on
    )
    stats = data.stats
    lengths = sorted(stats["lengths"])
    turns = [c.assistant_turns for c in convs]
    rows = len(convs)
    seen = stats["tokens"]
    return {
        "path": str(path),
        "files": formats,
        "format": ", ".join(sorted(set(formats.values()))),
        "template": stats["template"],
        "rows": rows,
        "turns": {"mean": round(sum(turns) / rows, 2), "max": max(turns)},
        "tokens": {**_spread(lengths), "total": sum(lengths)},
        "max_length": max_length,
        "truncated": stats["truncated"],
        "truncated_pct": round(100.0 * stats["truncated"] / rows, 2),
        "dropped": stats["dropped"],
        "trained_tokens": stats["trained_tokens"],
        "trained_pct": round(100.0 * stats["trained_tokens"] / seen, 2) if seen else 0.0,
    }


def preference_check_report(
    path: str | Path,
    tokenizer: Any,
    *,
    max_length: int,
    fmt: str = AUTO,
    template: str = "auto",
    truncation_mode: str = "keep_end",
) -> dict[str, Any]:
    """Load, validate and tokenise preference pairs or KTO rows at `path`; describe them.

    Returns a JSON-ready dict:

    * ``path``, ``files``, ``format``, ``template``, ``kind`` (``"preference pairs"`` or
      ``"labelled completions"``), ``rows`` (pairs or KTO rows);
    * ``tokens``: ``{"prompt": …, "chosen": …, "rejected": …}`` for pairs, ``{"prompt": …,
      "completion": …}`` for KTO rows, each ``{"p50", "p95", "max", "mean"}`` of the length in
      tokens before truncation (the prompt with its generation prompt, an answer with its
      end-of-turn token); ``sequence``: the same of prompt + longer answer, what ``max_length``
      limits;
    * ``max_length``, ``truncation_mode``; ``truncated`` and ``truncated_pct``; ``dropped``;
    * pairs: ``identical`` and ``identical_pct`` (kept pairs whose answers tokenise the same:
      nothing to learn), ``identical_sources`` (the first 20);
    * KTO rows: ``labels``: ``{"desirable", "undesirable", "desirable_pct"}``.

    Raises `BadInput` for any problem in the data (see `ftx.data.load_preference_pairs`).
    """
    kwargs = {"max_length": max_length, "template": template, "truncation_mode": truncation_mode}
    labelled = data_kind(path, fmt) == "labelled"
    if labelled:
        rows, formats = load_labelled_with_formats(path, fmt)
        stats = tokenize_labelled(rows, tokenizer, **kwargs).stats
        answers = {"completion": stats["completion_lengths"]}
    else:
        rows, formats = load_pairs_with_formats(path, fmt)
        stats = tokenize_pairs(rows, tokenizer, **kwargs).stats
        answers = {"chosen": stats["chosen_lengths"], "rejected": stats["rejected_lengths"]}
    n = len(rows)
    longest = [max(lengths) for lengths in zip(*answers.values(), strict=True)]
    sequence = [p + a for p, a in zip(stats["prompt_lengths"], longest, strict=True)]
    report: dict[str, Any] = {
        "path": str(path),
        "files": formats,
        "format": ", ".join(sorted(set(formats.values()))),
        "template": stats["template"],
        "kind": "labelled completions" if labelled else "preference pairs",
        "rows": n,
        "tokens": {
            name: _spread(lengths)
            for name, lengths in {"prompt": stats["prompt_lengths"], **answers}.items()
        },
        "sequence": _spread(sequence),
        "max_length": max_length,
        "truncation_mode": truncation_mode,
        "truncated": stats["truncated"],
        "truncated_pct": round(100.0 * stats["truncated"] / n, 2),
        "dropped": stats["dropped"],
    }
    if labelled:
        desirable = sum(1 for row in rows if row.label)
        report["labels"] = {
            "desirable": desirable,
            "undesirable": n - desirable,
            "desirable_pct": round(100.0 * desirable / n, 2),
        }
    else:
        report["identical"] = stats["identical"]
        report["identical_pct"] = round(100.0 * stats["identical"] / n, 2)
        report["identical_sources"] = stats["identical_sources"]
    return report


def prompt_check_report(
    path: str | Path, tokenizer: Any, *, max_length: int, template: str = "auto"
) -> dict[str, Any]:
    """Load, validate and tokenise prompt rows (`ftx.data.prompts`) at `path`; describe them:
    ``path``, ``kind`` (``"prompts"``), ``format``, ``template``, ``rows``, ``tokens`` (the
    rendered prompt's length, generation prompt included: ``p50``/``p95``/``max``/``mean``),
    ``max_length``, ``dropped`` (prompts with no room left for an answer), ``truncated`` (0:
    prompts are dropped, never cut) and ``columns`` (``{column: rows that have it}``: what the
    rewards receive beside the prompt)."""
    from ftx.data.prompts import load_prompt_rows, tokenize_prompts
    from ftx.data.templates import template_for

    rows = load_prompt_rows(path)
    tokenized = tokenize_prompts(rows, tokenizer, max_length=10**9, template=template)
    lengths = sorted(len(e["prompt_ids"]) for e in tokenized.examples)
    dropped = sum(n >= max_length for n in lengths)
    return {
        "path": str(path),
        "kind": "prompts",
        "format": "prompts",
        "files": {str(path): "prompts"},
        "template": template_for(tokenizer, template).name,
        "rows": len(rows),
        "tokens": _spread(lengths),
        "max_length": max_length,
        "truncated": 0,
        "truncated_pct": 0.0,
        "dropped": dropped,
        "columns": tokenized.stats["columns"],
    }


def _spread(lengths: list[int]) -> dict[str, float]:
    ordered = sorted(lengths)
    return {
        "p50": _percentile(ordered, 0.50),
        "p95": _percentile(ordered, 0.95),
        "max": ordered[-1],
        "mean": round(sum(ordered) / len(ordered), 1),
    }


def _percentile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank percentile of an ascending, non-empty list."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]
