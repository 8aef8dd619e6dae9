"""Scoring a model on held-out conversations: ``exact``, ``json`` and ``loss``.

* ``exact``: greedy completion of the last assistant turn equals the reference after stripping
  surrounding whitespace;
* ``json``: both parse as JSON and are equal as values (an unparsable output scores 0);
* ``loss``: mean cross-entropy over the assistant tokens (the tokens training would train), with
  ``perplexity`` and ``tokens``; the KV cache is off, as in training.

Used by ``ftx eval`` and by ``ftx run`` for the before/after scores, so the two always agree.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ftx.errors import BadInput

METRICS = ("exact", "json", "loss")


def check_limit(limit: int | None) -> None:
    """BadInput unless ``limit`` is None (every row) or a whole number ≥ 1."""
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise BadInput(
            f"--limit {limit}: expected a whole number ≥ 1 (score the first N rows)",
            hint="leave --limit out to use every row",
        )


def load_eval_rows(data: str, fmt: str, limit: int | None) -> list[Any]:
    """Conversations to complete or score against their last assistant turn (the first
    ``limit``); BadInput for plain text rows, which have no reference."""
    from ftx.data import load_conversations

    check_limit(limit)

    convs = load_conversations(data, fmt)
    for conv in convs:
        if conv.is_text:
            raise BadInput(
                f"{conv.source}: plain text rows have no assistant reference to compare against",
                hint="use conversations with a final assistant turn, or --metric loss",
            )
    return convs[:limit] if limit else convs


def evaluation(
    load: Any, data: str, metric: str, max_new_tokens: int, fmt: str, limit: int | None
) -> dict[str, Any]:
    """``ftx eval``'s result for the model ``load()`` returns (an :class:`ftx.inference.Loaded`;
    called once the data are read, so bad data fail before any model loads): the metric's dict
    with ``model`` and ``data``. ``pairwise`` reads preference pairs, ``loss`` any
    conversations, ``exact``/``json`` conversations with a reference."""
    check_limit(limit)
    if metric == "pairwise":
        from ftx.data import load_preference_pairs
        from ftx.evaluate_pairwise import pairwise_scores

        pairs = load_preference_pairs(data, fmt)[: limit or None]
        loaded = load()
        result = pairwise_scores(loaded.model, loaded.tokenizer, pairs)
    else:
        if metric == "loss":
            from ftx.data import load_conversations

            convs = load_conversations(data, fmt)[: limit or None]
        else:
            convs = load_eval_rows(data, fmt, limit)
        loaded = load()
        result = score(
            loaded.model, loaded.tokenizer, convs, metric=metric, max_new_tokens=max_new_tokens
        )
    return {**result, "model": loaded.source, "data": str(data)}


def exact_match(output: str, reference: str) -> bool:
    return output.strip() == reference.strip()


def json_match(output: str, reference: str) -> bool:
    try:
        return json.loads(output.strip()) == json.loads(reference.strip())
    except ValueError:
        return False


EXACT_SLACK = 8
"""Tokens allowed beyond the longest reference when only an exact match counts."""


def generations(
    model: Any,
    tokenizer: Any,
    convs: list[Any],
    *,
    template: str = "auto",
    max_new_tokens: int = 64,
    cap_to_reference: bool = False,
    **sampling: Any,
) -> list[dict[str, Any]]:
    """Complete each conversation's last assistant turn: rows of id/prompt/output/reference.

    ``cap_to_reference`` stops generation at the longest reference plus ``EXACT_SLACK`` tokens
    (right for exact match, where a longer completion cannot score).
    """
    from ftx.data import prompt_for_generation, template_for
    from ftx.inference import generate

    tmpl = template_for(tokenizer, template)  # once: resolving it renders probe conversations
    prompts, refs = [], []
    for conv in convs:
        ids, ref = prompt_for_generation(conv, tokenizer, template=tmpl)
        prompts.append(ids)
        refs.append(ref)
    if cap_to_reference:
        # A completion longer than the longest reference (plus slack for whitespace and the end
        # of turn) cannot match exactly: generating further is waste, and base models that
        # ramble would otherwise spend the whole budget on every row.
        longest = max(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in refs)
        max_new_tokens = min(max_new_tokens, longest + EXACT_SLACK)
    outs = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, **sampling)
    return [
        {
            "id": conv.id if conv.id is not None else conv.source,
            "prompt": tokenizer.decode(ids),
            "output": out,
            "reference": ref,
        }
        for conv, ids, out, ref in zip(convs, prompts, outs, refs, strict=True)
    ]


def score(
    model: Any,
    tokenizer: Any,
    convs: list[Any],
    *,
    metric: str = "exact",
    template: str = "auto",
    max_new_tokens: int = 64,
    max_length: int = 2048,
) -> dict[str, Any]:
    """Score ``convs`` with ``metric``; return ``{"metric", "score", "n", ...}``."""
    if metric not in METRICS:
        raise BadInput(f"unknown metric '{metric}'; choose one of {', '.join(METRICS)}")
    if not convs:
        raise BadInput("no held-out conversations to score")
    if metric == "loss":
        return _loss(model, tokenizer, convs, template=template, max_length=max_length)
    rows = generations(
        model,
        tokenizer,
        convs,
        template=template,
        max_new_tokens=max_new_tokens,
        cap_to_reference=metric == "exact",
    )
    match = exact_match if metric == "exact" else json_match
    hits = sum(match(r["output"], r["reference"]) for r in rows)
    return {
        "metric": metric,
        "score": hits / len(rows),
        "n": len(rows),
        "correct": hits,
        "examples": rows[:3],
    }


def score_for_run(
    run: Any, model: Any, tokenizer: Any, convs: list[Any], metric: str | None = None
) -> dict[str, Any]:
    """`score` with a run's data settings (``data.template``, ``data.eval_max_new_tokens``,
    ``data.max_length``) and its ``data.eval_metric`` unless ``metric`` is given: what an
    objective's ``score_heldout`` calls for held-out conversations."""
    data = run.config["data"]
    return score(
        model,
        tokenizer,
        convs,
        metric=metric or data["eval_metric"],
        template=data["template"],
        max_new_tokens=data["eval_max_new_tokens"],
        max_length=data["max_length"],
    )


def _loss(model: Any, tokenizer: Any, convs: list[Any], *, template: str, max_length: int) -> dict:
    import torch

    from ftx.data import tokenize_dataset

    data = tokenize_dataset(convs, tokenizer, max_length=max_length, template=template)
    total, count = 0.0, 0
    with torch.no_grad():
        for ex in data.examples:
            ids = torch.tensor([ex["input_ids"]], device=model.device)
            labels = torch.tensor([ex["labels"]], device=model.device)
            logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()
            target = labels[:, 1:]
            nll = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.size(-1)),
                target.reshape(-1),
                ignore_index=-100,
                reduction="sum",
            )
            total += float(nll)
            count += int((target != -100).sum())
    mean = total / max(count, 1)
    return {
        "metric": "loss",
        "score": mean,
        "n": len(data.examples),
        "perplexity": math.exp(min(mean, 50.0)),
        "tokens": count,
    }
