"""Forgetting of a tuned model against its base: retention and drift, as one record.

:func:`measure_forgetting` is what ``ftx run`` (``data.eval_forgetting``), ``ftx eval --metric
retention|drift`` and the Python API call; its result is ``summary.json``'s ``forgetting``:

    {"retention": float | None, "retention_kept": int, "retention_base_correct": int,
     "questions": int, "drift_nats": float, "drift_tokens": int, "seconds": float}

Memory: the tuned model and the base model are loaded side by side (fp32), unless the tuned
model is a PEFT model, whose base is itself with the adapter disabled. The base's answers come
from the cache when it has them (:mod:`ftx.forgetting.retention`); the tuned model is asked only
the questions the base answered right (the others cannot count towards retention).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ftx.errors import BadInput

METRICS = ("retention", "drift")


def measure_forgetting(
    tuned: Any,
    base_dir: str | Path,
    *,
    metrics: tuple[str, ...] = METRICS,
    template: str = "auto",
) -> dict[str, Any]:
    """Measure ``metrics`` of ``tuned`` (an :class:`ftx.inference.Loaded`) against the base
    model in ``base_dir`` (the directory the run trained from, or a PEFT adapter's base).
    Only the keys of the metrics asked for are filled; ``seconds`` is the wall time taken."""
    from ftx.forgetting.drift import mean_kl
    from ftx.forgetting.questions import load_questions
    from ftx.forgetting.retention import (
        answers_right,
        cached_base_answers,
        retention_score,
        store_base_answers,
    )

    started = time.time()
    peft = hasattr(tuned.model, "disable_adapter")
    base: Any = None

    def base_model() -> Any:
        nonlocal base
        if base is None:
            from ftx.inference import load_for_inference

            base = load_for_inference(base_dir)
        return base

    result: dict[str, Any] = {}
    if "retention" in metrics:
        questions = load_questions()
        base_right = cached_base_answers(base_dir, template)
        if base_right is None:
            if peft:
                with tuned.model.disable_adapter():
                    base_right = answers_right(
                        tuned.model, tuned.tokenizer, questions, template=template
                    )
            else:
                b = base_model()
                base_right = answers_right(b.model, b.tokenizer, questions, template=template)
            store_base_answers(base_dir, template, base_right)
        # Only what the base got right can be kept: the tuned model answers those alone.
        asked = [q for q, right in zip(questions, base_right, strict=True) if right]
        answered = iter(
            answers_right(tuned.model, tuned.tokenizer, asked, template=template) if asked else []
        )
        tuned_right = [right and next(answered) for right in base_right]
        result.update(retention_score(base_right, tuned_right))
    if "drift" in metrics:
        reference = None if peft else base_model().model
        if reference is not None:
            _check_same_vocabulary(reference, tuned.model, base_dir)
        result.update(mean_kl(tuned.model, tuned.tokenizer, base=reference))
    result["seconds"] = round(time.time() - started, 2)
    return result


def _check_same_vocabulary(base: Any, tuned: Any, base_dir: str | Path) -> None:
    """KL needs one vocabulary: BadInput when the output layers differ in size."""
    sizes = (
        base.get_output_embeddings().weight.shape[0],
        tuned.get_output_embeddings().weight.shape[0],
    )
    if sizes[0] != sizes[1]:
        raise BadInput(
            f"the base model {base_dir} predicts {sizes[0]} tokens and the tuned model "
            f"{sizes[1]}: drift compares distributions over one vocabulary",
            hint="pass the model this one was fine-tuned from as the base",
        )
