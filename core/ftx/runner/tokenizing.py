"""A run's rows as the trainer's datasets: the objective's tokenisation through the token cache."""

from __future__ import annotations

from typing import Any

from ftx.errors import BadInput
from ftx.plugins import call_first
from ftx.runner.request import PreparedRun


def tokenize_for_run(
    prep: PreparedRun, tokenizer: Any, console: Any
) -> tuple[tuple[Any, Any], dict]:
    """Training and held-out rows as the trainer's datasets, tokenised by the objective's
    ``tokenize_rows`` through the token cache (:mod:`ftx.data.token_cache`); raise BadInput if
    no training row is left, or fewer than the objective's smallest batch."""
    from ftx.data.token_cache import tokenized_dataset

    dcfg = prep.resolved.config["data"]

    def tokenize(rows: list[Any]) -> Any:
        tokenized, _ = call_first(
            prep.pm, "tokenize_rows", rows=rows, tokenizer=tokenizer, data=dcfg
        )
        return tokenized

    def dataset(rows: list[Any]) -> tuple[Any, dict[str, Any]]:
        return tokenized_dataset(
            rows,
            tokenizer,
            dcfg,
            objective=prep.objective.name,
            tokenize=tokenize,
            use_cache=dcfg["token_cache"],
        )

    train, train_stats = dataset(prep.train_rows)
    if not len(train):
        raise BadInput(
            f"{dcfg['path']}: no trainable rows left after truncation to {dcfg['max_length']}",
            hint="raise data.max_length",
        )
    smallest = prep.traits.min_batch_size
    if len(train) < smallest:
        raise BadInput(
            f"{dcfg['path']}: {len(train)} training row(s) left, and the {prep.objective.name} "
            f"objective needs at least {smallest} in every batch",
            hint=f"give at least {smallest} rows",
        )
    held_out = dataset(prep.eval_rows)[0] if prep.eval_rows else None
    stats = {k: v for k, v in train_stats.items() if k != "lengths"}
    cached = " (tokens from the cache)" if stats.get("token_cache") == "hit" else ""
    console.print(
        f"data: {stats.get('kept')} rows, {stats.get('tokens')} tokens "
        f"({stats.get('truncated', 0)} truncated, {stats.get('dropped', 0)} dropped){cached}"
    )
    return (train, held_out), stats
