"""Held-out evaluation during training (run time: imports transformers).

The Trainer computes the validation loss at every ``train.eval_steps`` on the first
``train.eval_loss_rows`` held-out rows. :class:`TaskMetric` adds the run's task metric
(``data.eval_metric`` as the objective's ``score_heldout`` scores it: the same function as the
before/after scores) on the first ``train.eval_metric_rows`` rows every ``train.eval_metric_every``
evaluations, into the evaluation's metrics (where ``load_best_model_at_end`` and
``EarlyStoppingCallback`` read it) and into the logs (``metrics.jsonl``, the trackers) with
the seconds it took. :func:`evaluation_callbacks` builds the callbacks a run needs and
:func:`selection_facts` says afterwards which checkpoint was exported and why.
"""

from __future__ import annotations

import time
from typing import Any

from transformers import EarlyStoppingCallback, TrainerCallback

from ftx.plugins import call_first


class TaskMetric(TrainerCallback):
    """Score ``rows`` with the objective's ``score_heldout`` every ``every`` evaluations.

    Adds ``eval_<metric>`` and ``eval_select`` (:func:`selection_value`) to the evaluation's
    metrics (in place, before the Trainer compares checkpoints) and logs ``eval_<metric>``,
    ``eval_<metric>_seconds`` (generation and scoring time) and ``eval_<metric>_n`` through
    ``trainer.log``. The model is scored in eval mode
    with its KV cache on, and put back as it was."""

    def __init__(self, pm: Any, run: Any, rows: list[Any], every: int) -> None:
        self.pm, self.run, self.rows, self.every = pm, run, rows, every
        self.metric = run.config["data"]["eval_metric"]
        self.trainer: Any = None
        self.count = 0

    def attach(self, trainer: Any) -> None:
        self.trainer = trainer

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        self.count += 1
        if metrics is None or model is None or self.count % self.every:
            return
        result, seconds = self.score(model, kwargs.get("processing_class"))
        key = f"eval_{self.metric}"
        metrics[key] = result["score"]
        metrics["eval_select"] = selection_value(result["score"], metrics.get("eval_loss"))
        logged = {key: result["score"], f"{key}_seconds": seconds, f"{key}_n": result["n"]}
        if self.trainer is not None:
            self.trainer.log(logged)

    def score(self, model: Any, tokenizer: Any) -> tuple[dict[str, Any], float]:
        """(the objective's result on the rows, seconds)."""
        started = time.time()
        was_training = model.training
        config = getattr(model, "config", None)
        cache = getattr(config, "use_cache", None)
        model.eval()
        if config is not None:
            config.use_cache = True
        try:
            result, _ = call_first(
                self.pm,
                "score_heldout",
                run=self.run,
                model=model,
                tokenizer=tokenizer,
                rows=self.rows,
            )
        finally:
            if config is not None:
                config.use_cache = cache
            model.train(was_training)
        return result, round(time.time() - started, 2)


TIE_BREAK = 1e-6
"""Weight of the validation loss in ``eval_select``: far below one row of any metric sample
(1/n for n < 10^4 rows), so it only orders checkpoints whose metric is equal."""


def selection_value(score: float, loss: float | None) -> float:
    """``eval_select``, what ``select_best: metric`` maximises: the task metric, ties broken
    by the lower validation loss."""
    return score - TIE_BREAK * min(float(loss), 1e4) if loss is not None else score


class Patience(EarlyStoppingCallback):
    """Early stopping that waits while the held-out run still improves: an evaluation counts
    as progress when the validation loss falls by more than ``early_stopping_threshold``, or
    (``metric``, e.g. ``eval_exact``) the task metric rises by more than it. A task metric flat
    at 0 while the loss still falls (a hard task, early on) does not stop the run. The counter
    and the bests travel in checkpoints (``restore_callback_states_from_checkpoint``)."""

    def __init__(
        self,
        early_stopping_patience: int = 1,
        early_stopping_threshold: float = 0.0,
        metric: str | None = None,
    ) -> None:
        super().__init__(early_stopping_patience, early_stopping_threshold)
        self.metric = metric
        self.best_loss: float | None = None
        self.best_metric: float | None = None

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        loss = (metrics or {}).get("eval_loss")
        score = (metrics or {}).get(self.metric) if self.metric else None
        if loss is None or (self.metric and score is None):
            return
        delta = self.early_stopping_threshold or 0.0
        better = self.best_loss is None or loss < self.best_loss - delta
        if score is not None:
            best = self.best_metric
            better = better or best is None or score > best + delta
            self.best_metric = score if best is None else max(score, best)
        self.best_loss = loss if self.best_loss is None else min(loss, self.best_loss)
        counter = self.early_stopping_patience_counter
        self.early_stopping_patience_counter = 0 if better else counter + 1
        if self.early_stopping_patience_counter >= self.early_stopping_patience:
            control.should_training_stop = True

    def state(self) -> dict:
        saved = super().state()
        saved["args"]["metric"] = self.metric
        saved["attributes"].update(best_loss=self.best_loss, best_metric=self.best_metric)
        return saved


def evaluation_callbacks(pm: Any, run: Any, evaluation: Any, held_out: list[Any]) -> list[Any]:
    """The callbacks a run's ``Evaluation`` needs, in order: the task metric (before early
    stopping, which reads it), then :class:`Patience`."""
    callbacks: list[Any] = []
    if evaluation is None or not evaluation.enabled:
        return callbacks
    if evaluation.metric_every is not None and held_out:
        rows = held_out[: evaluation.metric_rows]
        callbacks.append(TaskMetric(pm, run, rows, evaluation.metric_every))
    if evaluation.patience is not None:
        metric = None if evaluation.criterion == "eval_loss" else f"eval_{evaluation.metric}"
        callbacks.append(Patience(evaluation.patience, evaluation.min_delta, metric))
    return callbacks


def early_stopper(trainer: Any) -> Any:
    """The trainer's :class:`Patience` (early stopping), or None."""
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, Patience):
            return callback
    return None


def selection_facts(trainer: Any, evaluation: Any) -> dict[str, Any]:
    """``summary.json``'s facts about evaluation during training: ``evaluation`` (interval,
    criterion, the validation curve and the task metric's scores with their seconds) and
    ``best`` (the exported step, the criterion, its values there and why), plus
    ``stopped_early`` (step, planned steps, reason) when early stopping ended training."""
    if evaluation is None or not evaluation.enabled:
        return {}
    state = trainer.state
    key = f"eval_{evaluation.metric}"
    curve = [
        {"step": r["step"], "eval_loss": round(float(r["eval_loss"]), 6)}
        for r in state.log_history
        if "eval_loss" in r
    ]
    scores = [
        {"step": r["step"], key: r[key], "seconds": r.get(f"{key}_seconds"), "n": r.get(f"{key}_n")}
        for r in state.log_history
        if key in r and "eval_loss" not in r
    ]
    facts: dict[str, Any] = {
        "evaluation": {
            "every_steps": state.eval_steps,
            "select_best": evaluation.select_best,
            "criterion": evaluation.criterion,
            "evaluations": len(curve),
            "validation_loss": curve,
            "task_metric": scores,
            "task_metric_seconds": round(sum(r["seconds"] or 0 for r in scores), 2),
        }
    }
    best_step = state.best_global_step if evaluation.criterion is not None else None
    if best_step:
        at_best = {**next((r for r in curve if r["step"] == best_step), {})}
        at_best.update(next((r for r in scores if r["step"] == best_step), {}))
        shown = {k: at_best[k] for k in ("eval_loss", key) if k in at_best}
        how = (
            f"highest {key} (ties: lowest eval_loss)"
            if evaluation.criterion == "eval_select"
            else "lowest eval_loss"
        )
        facts["best"] = {
            "step": best_step,
            "select_best": evaluation.select_best,
            "criterion": evaluation.criterion,
            **shown,
            "why": f"{how} of {len(curve)} evaluations",
        }
    else:
        facts["best"] = {"step": state.global_step, "select_best": "last", "why": "the last step"}
    stopper = early_stopper(trainer)
    if (
        stopper is not None
        and stopper.early_stopping_patience_counter >= stopper.early_stopping_patience
        and state.global_step < state.max_steps
    ):
        watched = "eval_loss" if stopper.metric is None else f"eval_loss and {stopper.metric}"
        facts["stopped_early"] = {
            "step": state.global_step,
            "of": state.max_steps,
            "reason": f"{watched} did not improve by more than {evaluation.min_delta} in "
            f"{stopper.early_stopping_patience} evaluations in a row",
        }
    return facts
