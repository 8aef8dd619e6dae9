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
from transformers.trainer_callback import ExportableState

from ftx.plugins import call_first


class TaskMetric(TrainerCallback):
    """Score ``rows`` with the objective's ``score_heldout`` every ``every`` evaluations.

    Adds ``eval_<metric>`` to the evaluation's metrics (in place, before :class:`Selection`
    and the Trainer compare checkpoints) and logs ``eval_<metric>``,
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


class Selection(TrainerCallback, ExportableState):
    """Which evaluated checkpoint is best, as ``eval_select`` (the number of improvements so
    far), the key the Trainer's ``load_best_model_at_end`` maximises.

    An evaluation improves on the best one when (``metric`` set: ``select_best: metric``) its
    task metric is higher by more than ``min_delta``, or equal and its validation loss lower
    by more than ``min_delta``; (``metric`` None: ``select_best: loss``) its validation loss is
    lower by more than ``min_delta``. A change within ``min_delta`` is no improvement, as for
    early stopping: on the demo the last of three checkpoints at exact 1.000 had a loss lower
    by 0.00014 and scored 79/80 on the whole held-out split, the one it would have replaced
    80/80 (BENCHMARKS.md §10). The bests travel in checkpoints."""

    def __init__(self, metric: str | None = None, min_delta: float = 0.0) -> None:
        self.metric, self.min_delta = metric, min_delta
        self.best_metric: float | None = None
        self.best_loss: float | None = None
        self.improvements = 0

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if metrics is None or "eval_loss" not in metrics:
            return
        loss, score = metrics["eval_loss"], metrics.get(self.metric) if self.metric else None
        if self.metric and score is None:
            return
        if self._improves(loss, score):
            self.improvements += 1
            self.best_metric, self.best_loss = score, loss
        metrics["eval_select"] = self.improvements

    def _improves(self, loss: float, score: float | None) -> bool:
        if self.best_loss is None:
            return True
        lower = loss < self.best_loss - self.min_delta
        if score is None or self.best_metric is None:
            return lower
        return score > self.best_metric + self.min_delta or (score >= self.best_metric and lower)

    def state(self) -> dict:
        return {
            "args": {"metric": self.metric, "min_delta": self.min_delta},
            "attributes": {
                "best_metric": self.best_metric,
                "best_loss": self.best_loss,
                "improvements": self.improvements,
            },
        }


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
    """The callbacks a run's ``Evaluation`` needs, in order: the task metric, then
    :class:`Selection` and :class:`Patience`, which read it."""
    callbacks: list[Any] = []
    if evaluation is None or not evaluation.enabled:
        return callbacks
    if evaluation.metric_every is not None and held_out:
        rows = held_out[: evaluation.metric_rows]
        callbacks.append(TaskMetric(pm, run, rows, evaluation.metric_every))
    metric = None if evaluation.criterion == "eval_loss" else f"eval_{evaluation.metric}"
    if evaluation.criterion is not None:
        callbacks.append(Selection(metric, evaluation.min_delta))
    if evaluation.patience is not None:
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
            f"highest {key}, then lowest eval_loss"
            if evaluation.criterion == "eval_select"
            else "lowest eval_loss"
        )
        how += f" (a change of at most {evaluation.min_delta} is none)"
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
