"""The numbers behind ``ftx data check``: what a data file holds and what training will see."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ftx.data.formats import AUTO, load_with_formats
from ftx.data.tokens import tokenize_dataset


def data_check_report(
    path: str | Path,
    tokenizer: Any,
    *,
    max_length: int,
    fmt: str = AUTO,
    template: str = "auto",
    train_on: str = "assistant",
) -> dict[str, Any]:
    """Load, validate and tokenise `path`; describe it.

    Returns a JSON-ready dict:

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
    convs, formats = load_with_formats(path, fmt)
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
        "tokens": {
            "p50": _percentile(lengths, 0.50),
            "p95": _percentile(lengths, 0.95),
            "max": lengths[-1],
            "mean": round(sum(lengths) / rows, 1),
            "total": sum(lengths),
        },
        "max_length": max_length,
        "truncated": stats["truncated"],
        "truncated_pct": round(100.0 * stats["truncated"] / rows, 2),
        "dropped": stats["dropped"],
        "trained_tokens": stats["trained_tokens"],
        "trained_pct": round(100.0 * stats["trained_tokens"] / seen, 2) if seen else 0.0,
    }


def _percentile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank percentile of an ascending, non-empty list."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]
