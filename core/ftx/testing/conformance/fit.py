"""The ``learned`` check: did ``model/`` fit the training rows better than the base model?

The measure follows the rows the objective learns from, the same rows before and after (free
of the batch-to-batch noise of the logged curve):

* preference pairs (:class:`ftx.data.PreferencePair`): the mean margin, in nats, of the chosen
  answer's summed log-probability over the rejected one's (:mod:`ftx.evaluate_pairwise`), which
  every preference objective (DPO, ORPO, SimPO, KTO on pairs …) raises;
* labelled completions (:class:`ftx.data.LabelledCompletion`, KTO): the mean log-probability of
  the desirable completions minus that of the undesirable ones;
* anything else the objective's own ``tokenize_rows`` turns into ``input_ids``/``labels``
  (supervised, and objectives built on it): the token-averaged loss on the trained tokens,
  which must fall.

Rows of another kind have no measure the kit can trust: the check is skipped with the reason.
"""

from __future__ import annotations

from typing import Any

from ftx.testing.conformance.report import LEARNED_ROWS, ConformanceReport, SkipCheck


def check_learned(
    prep: Any, tokenizer: Any, trained: Any, base: Any, report: ConformanceReport
) -> None:
    """Compare ``trained`` with ``base`` on the first training rows; raise :class:`SkipCheck`
    with the reason when the rows have no measure."""
    from ftx.data import LabelledCompletion, PreferencePair

    rows = prep.train_rows[: 2 * LEARNED_ROWS]
    assert rows, "no training row to measure"
    dcfg = prep.resolved.config["data"]
    if isinstance(rows[0], (PreferencePair, LabelledCompletion)):
        if isinstance(rows[0], PreferencePair):
            rows = rows[:LEARNED_ROWS]
            margin, what = _pair_margin, "chosen - rejected answers"
        else:
            margin, what = _labelled_margin, "desirable - undesirable completions"
        before, after = (margin(m, tokenizer, rows, dcfg) for m in (base, trained))
        report.fit_margin = (round(before, 6), round(after, 6))
        assert after > before, (
            f"model/ does not prefer what the training rows prefer more than the base model "
            f"does (mean log-probability of the {what} on {len(rows)} training rows: base "
            f"{before:.5f}, trained {after:.5f} nats)"
        )
        return
    from ftx.plugins import call_first

    tokenized, _ = call_first(
        prep.pm, "tokenize_rows", rows=rows[:LEARNED_ROWS], tokenizer=tokenizer, data=dcfg
    )
    examples = list(getattr(tokenized, "examples", None) or [])
    if not examples or not {"input_ids", "labels"} <= set(examples[0]):
        kind = type(rows[0]).__name__
        raise SkipCheck(
            f"the objective's rows ({kind}) are neither conversations, preference pairs nor "
            "labelled completions: no measure of fit the kit can trust"
        )
    before, after = _mean_loss(base, examples), _mean_loss(trained, examples)
    report.fit_loss = (round(before, 6), round(after, 6))
    assert after < before, (
        f"model/ does not fit the training rows better than the base model "
        f"(loss on {len(examples)} training rows: base {before:.5f}, trained {after:.5f})"
    )


def _pair_margin(model: Any, tokenizer: Any, pairs: list[Any], dcfg: dict[str, Any]) -> float:
    from ftx.evaluate_pairwise import pairwise_scores

    scores = pairwise_scores(
        model, tokenizer, pairs, max_length=dcfg["max_length"], template=dcfg["template"]
    )
    return float(scores["mean_margin"])


def _labelled_margin(model: Any, tokenizer: Any, rows: list[Any], dcfg: dict[str, Any]) -> float:
    from ftx.data import tokenize_labelled
    from ftx.evaluate_pairwise import answer_logps

    data = tokenize_labelled(
        rows, tokenizer, max_length=dcfg["max_length"], template=dcfg["template"]
    )
    labels = [bool(ex["label"]) for ex in data.examples]
    assert True in labels and False in labels, (
        f"the first {len(rows)} training rows need desirable and undesirable completions"
    )
    # answer_logps scores two answers per prompt: the completion, and nothing (log p = 0)
    examples = [
        {"prompt_ids": ex["prompt_ids"], "chosen_ids": ex["completion_ids"], "rejected_ids": []}
        for ex in data.examples
    ]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    logps = [c for c, _ in answer_logps(model, examples, int(pad or 0))]
    good = [lp for lp, label in zip(logps, labels, strict=True) if label]
    bad = [lp for lp, label in zip(logps, labels, strict=True) if not label]
    return sum(good) / len(good) - sum(bad) / len(bad)


def _mean_loss(model: Any, rows: list[dict[str, Any]]) -> float:
    """Token-averaged cross-entropy of ``model`` on the trained tokens of ``rows``."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for row in rows:
            ids = torch.tensor([row["input_ids"]])
            labels = torch.tensor([row["labels"]])
            logits = model(input_ids=ids).logits[:, :-1].float()
            target = labels[:, 1:]
            total += torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                target.reshape(-1),
                ignore_index=-100,
                reduction="sum",
            ).item()
            count += int((target != -100).sum())
    return total / max(count, 1)
