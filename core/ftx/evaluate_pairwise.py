"""Pairwise accuracy: how often a model prefers the chosen answer of a preference pair.

For each `ftx.data.PreferencePair` the model reads the prompt and scores each answer by the sum
of the log-probabilities of its tokens (teacher-forced, the answer's content and end-of-turn
token as `ftx.data.tokenize_pairs` tokenises them). A pair counts as correct when the chosen
answer's sum is strictly greater than the rejected one's (a tie, as for identical answers, is
wrong). Defined for any causal LM, before and after training, whatever the objective (reference-
free ones too): it needs no reference model.

Used by ``ftx eval --metric pairwise`` and by preference objectives for the before/after scores.
Imports torch only when called.
"""

from __future__ import annotations

from typing import Any

from ftx.errors import BadInput

METRIC = "pairwise"


def pairwise_scores(
    model: Any,
    tokenizer: Any,
    pairs: list[Any],
    *,
    max_length: int = 2048,
    template: str = "auto",
    batch_size: int = 8,
) -> dict[str, Any]:
    """Score `pairs`; return ``{"metric": "pairwise", "score", "n", "correct", "mean_margin",
    "chosen_logp", "rejected_logp", "truncated", "examples"}``.

    ``score`` is the share of pairs whose chosen answer has the higher summed log-probability;
    ``mean_margin`` the mean of (log p(chosen) - log p(rejected)) in nats; ``chosen_logp`` and
    ``rejected_logp`` the means of the two sums; ``examples`` the first three pairs' numbers.
    Pairs are truncated like training data (``keep_end``, `max_length` tokens per sequence).
    No gradients; the model is put in eval mode for the call and restored after.

    Raises `BadInput` when there is no pair to score.
    """
    from ftx.data.preference_tokens import tokenize_pairs

    if not pairs:
        raise BadInput("no held-out preference pairs to score")
    # keep_end truncation drops no pair, so examples and pairs stay aligned.
    data = tokenize_pairs(pairs, tokenizer, max_length=max_length, template=template)
    logps = answer_logps(model, data.examples, pad_id(tokenizer), batch_size=batch_size)
    margins = [chosen - rejected for chosen, rejected in logps]
    correct = sum(1 for m in margins if m > 0)
    n = len(margins)
    return {
        "metric": METRIC,
        "score": correct / n,
        "n": n,
        "correct": correct,
        "mean_margin": sum(margins) / n,
        "chosen_logp": sum(c for c, _ in logps) / n,
        "rejected_logp": sum(r for _, r in logps) / n,
        "truncated": data.stats["truncated"],
        "examples": [
            {"id": p.id if p.id is not None else p.source, "chosen_logp": c, "rejected_logp": r}
            for p, (c, r) in zip(pairs[:3], logps[:3], strict=False)
        ],
    }


def answer_logps(
    model: Any, examples: list[dict], pad_id: int, *, batch_size: int = 8
) -> list[tuple[float, float]]:
    """``(log p(chosen | prompt), log p(rejected | prompt))`` per example (``prompt_ids``,
    ``chosen_ids``, ``rejected_ids``), summed over the answer tokens, in nats."""
    import torch

    sequences = []
    for ex in examples:
        for side in ("chosen_ids", "rejected_ids"):
            sequences.append((ex["prompt_ids"], ex[side]))
    # Longest first, so that batches hold similar lengths; results go back in order.
    order = sorted(range(len(sequences)), key=lambda i: -sum(map(len, sequences[i])))
    sums = [0.0] * len(sequences)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), 2 * batch_size):
                chunk = order[start : start + 2 * batch_size]
                values = _batch_logps(model, [sequences[i] for i in chunk], pad_id, device)
                for i, value in zip(chunk, values, strict=True):
                    sums[i] = value
    finally:
        model.train(was_training)
    return [(sums[2 * k], sums[2 * k + 1]) for k in range(len(examples))]


def _batch_logps(model: Any, batch: list[tuple[list, list]], pad_id: int, device: Any) -> list:
    import torch

    width = max(len(p) + len(a) for p, a in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    answer = torch.zeros((len(batch), width), dtype=torch.bool)
    for row, (prompt, completion) in enumerate(batch):
        length = len(prompt) + len(completion)
        ids[row, :length] = torch.tensor(prompt + completion)
        attention[row, :length] = 1
        answer[row, len(prompt) : length] = True
    ids, attention, answer = ids.to(device), attention.to(device), answer.to(device)
    logits = model(input_ids=ids, attention_mask=attention, use_cache=False).logits[:, :-1]
    logits = logits.float()
    targets = ids[:, 1:]
    token_logps = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)
    return (token_logps * answer[:, 1:]).sum(-1).tolist()


def pad_id(tokenizer: Any) -> int:
    """The tokenizer's pad id, else its end-of-sequence id, else 0 (what padding uses)."""
    for name in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return 0
