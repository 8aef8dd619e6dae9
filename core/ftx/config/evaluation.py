"""Evaluation during training, the best checkpoint, early stopping and the budget, resolved.

One decision from the merged ``train`` section, the ``data`` section and the objective's traits
(:func:`resolve_evaluation`):

* **held-out data**: ``data.eval``, ``data.eval_ratio`` > 0, or the demo (which has a split);
* **evaluation**: ``train.eval_steps`` ``auto`` = every eighth of the run (``0.125``, which the
  Trainer turns into ``ceil(max_steps / 8)``) with held-out data, at every save instead when
  ``train.save_steps`` is given (the best checkpoint must have been saved), else none; an
  objective that generates while training (GRPO) evaluates only when asked;
  ``train.eval_strategy=no`` turns it off;
* **the best checkpoint**: ``train.select_best`` ``metric`` | ``loss`` | ``last``; ``auto`` =
  :data:`DEFAULT_SELECT_BEST` when evaluating, else ``last``. ``metric`` scores
  ``data.eval_metric`` (``loss`` when that is the metric) on ``train.eval_metric_rows`` rows
  at every evaluation;
* **the budget**: when neither ``train.max_steps`` nor ``train.num_train_epochs`` is given
  (``auto``) and the run selects a checkpoint, up to :data:`AUTO_EPOCHS` epochs with early
  stopping (``train.early_stopping_patience`` ``auto`` = :data:`AUTO_PATIENCE`); otherwise one
  epoch (the user's budget when given), early stopping only when asked.

The Trainer does the work: ``load_best_model_at_end`` with ``metric_for_best_model``, a
checkpoint at every evaluation (``save_steps`` = ``eval_steps`` unless given: the Trainer
requires a multiple), and ``EarlyStoppingCallback`` whose state a checkpoint carries
(``restore_callback_states_from_checkpoint``). Every problem is a BadInput naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ftx.config.tables import CHOICES, TRAIN_FIELDS
from ftx.errors import BadInput
from ftx.options import AUTO, coerce, did_you_mean

DEFAULT_SELECT_BEST = "metric"
"""``train.select_best: auto`` with held-out data; chosen by measurement (BENCHMARKS.md)."""
AUTO_EPOCHS = 3.0
"""Epochs of the automatic budget: the FastChat recipe's 3, cut short by early stopping."""
AUTO_PATIENCE = 2
AUTO_EVAL_STEPS = 0.125
NO_HELD_OUT = (
    "set data.eval=FILE (a held-out file) or data.eval_ratio=0.1 (hold out 10% of the rows)"
)


@dataclass
class Evaluation:
    """What a run evaluates during training (``train`` keys, as ``config.yaml`` records them,
    plus the arguments the Trainer gets). ``criterion``: what the best checkpoint is chosen by
    (``eval_loss``; ``eval_select``: the task metric, then the loss), ``None`` for ``last``;
    :class:`ftx.validation.Selection` compares, with ``min_delta``."""

    steps: float | None
    select_best: str
    criterion: str | None
    metric: str
    metric_every: int | None
    patience: int | None
    min_delta: float
    metric_rows: int
    loss_rows: int

    @property
    def enabled(self) -> bool:
        return self.steps is not None


def ftx_train_keys(given: dict[str, Any]) -> dict[str, Any]:
    """The :data:`TRAIN_FIELDS` values of ``given`` (the merged ``train`` section), coerced,
    with defaults; ``auto`` stays ``auto``."""
    out: dict[str, Any] = {}
    for key, (type_name, default, _) in TRAIN_FIELDS.items():
        value = given.get(key, default)
        where = f"train.{key}"
        if value == AUTO or value is None:
            if value is None and not type_name.endswith("?"):
                raise BadInput(f"{where}: null is not allowed", hint=f"drop {where}")
            out[key] = value
            continue
        out[key] = coerce(value, type_name.rstrip("?"), where=where)
        choices = CHOICES.get(("train", key))
        if choices is not None and out[key] not in choices:
            raise BadInput(
                f"{where}: {value!r} is not one of: {', '.join(choices)}"
                f"{did_you_mean(str(value), choices)}"
            )
    return out


def has_held_out(data: dict[str, Any]) -> bool:
    """Whether the run will have held-out rows: a file, a ratio, or the demo's split."""
    return data["eval"] is not None or bool(data["eval_ratio"]) or data["path"] is None


def resolve_evaluation(
    train: dict[str, Any], given: dict[str, Any], data: dict[str, Any], traits: Any
) -> tuple[Evaluation, dict[str, Any]]:
    """Decide the run's evaluation; update ``train`` (the merged section: ftx's keys resolved,
    ``num_train_epochs``/``eval_steps``/``eval_strategy``/``save_steps`` set) and return
    ``(Evaluation, the Trainer arguments it adds)``. ``given``: the keys the user (or a saved
    ``config.yaml``) set, to tell a chosen budget from the default. BadInput for eval_steps or a
    criterion without held-out data, ``select_best: metric`` without a task metric, early
    stopping without a criterion."""
    keys = ftx_train_keys(train)
    held_out = has_held_out(data)
    steps = train.get("eval_steps", AUTO)
    strategy = str(train.get("eval_strategy") or "")
    if steps not in (AUTO, None) and not held_out:
        raise BadInput(
            f"train.eval_steps={steps}: the run has no held-out data to evaluate on",
            hint=f"{NO_HELD_OUT}, or drop train.eval_steps",
        )
    generates = int(getattr(traits, "generation_steps", 0) or 0) > 0
    if steps == AUTO:
        steps = AUTO_EVAL_STEPS if held_out and not generates else None
        if steps is not None and given.get("save_steps") not in (None, AUTO):
            steps = train["save_steps"]  # evaluate at every save: each has a checkpoint
    if strategy == "no":
        steps = None
    select = keys["select_best"]
    saves = str(train.get("save_strategy") or "steps") != "no"
    if select == AUTO:
        select = DEFAULT_SELECT_BEST if steps is not None and saves else "last"
    elif select != "last" and steps is not None and not saves:
        raise BadInput(
            f"train.select_best={select}: train.save_strategy=no keeps no checkpoint to choose",
            hint="drop train.save_strategy, or set train.select_best=last",
        )
    elif select != "last" and steps is None:
        why = "evaluation is off (train.eval_strategy=no)" if held_out else "no held-out data"
        raise BadInput(
            f"train.select_best={select}: the run has {why} to choose a checkpoint by",
            hint=f"{NO_HELD_OUT}, or set train.select_best=last"
            if not held_out
            else "drop train.eval_strategy, or set train.select_best=last",
        )
    metric = data["eval_metric"]
    task_metrics = [m for m in getattr(traits, "metrics", None) or (metric,) if m != "loss"]
    if keys["select_best"] == "metric" and not task_metrics:
        raise BadInput(
            "train.select_best=metric: the objective has no task metric, only the held-out loss",
            hint="set train.select_best=loss",
        )
    if select == "metric" and metric == "loss":
        criterion = "eval_loss"
    elif select == "metric":
        criterion = "eval_select"  # the metric, then the loss (ftx.validation.Selection)
    else:
        criterion = "eval_loss" if select == "loss" else None
    chosen_budget = any(given.get(k) not in (None, AUTO) for k in ("num_train_epochs", "max_steps"))
    chosen_budget = chosen_budget or int(train.get("max_steps") or -1) > 0
    patience = keys["early_stopping_patience"]
    if patience == AUTO:
        patience = AUTO_PATIENCE if criterion is not None and not chosen_budget else None
    elif patience is not None and criterion is None:
        raise BadInput(
            f"train.early_stopping_patience={patience}: early stopping needs a criterion, and "
            f"train.select_best is last{'' if steps is not None else ' (no evaluation)'}",
            hint="set train.select_best=metric or loss, or drop train.early_stopping_patience"
            if steps is not None
            else f"{NO_HELD_OUT}, or drop train.early_stopping_patience",
        )
    if train.get("num_train_epochs") in (AUTO, None):
        train["num_train_epochs"] = AUTO_EPOCHS if patience is not None else 1.0
    every = keys["eval_metric_every"]
    if every == AUTO:
        every = 1 if select == "metric" and criterion != "eval_loss" else None
    elif every is not None and select == "metric" and every != 1:
        raise BadInput(
            f"train.eval_metric_every={every}: train.select_best=metric compares the metric at "
            "every evaluation",
            hint="drop train.eval_metric_every, or set train.select_best=loss",
        )
    if every is not None and steps is None:
        raise BadInput(
            f"train.eval_metric_every={every}: the run does not evaluate during training",
            hint=f"{NO_HELD_OUT}, or drop train.eval_metric_every",
        )
    keys.update(select_best=select, early_stopping_patience=patience, eval_metric_every=every)
    train.update(keys)
    train["eval_steps"] = steps
    evaluation = Evaluation(
        steps=steps,
        select_best=select,
        criterion=criterion,
        metric=metric,
        metric_every=every,
        patience=patience,
        min_delta=keys["early_stopping_min_delta"],
        metric_rows=keys["eval_metric_rows"],
        loss_rows=keys["eval_loss_rows"],
    )
    return evaluation, _trainer_arguments(train, given, evaluation)


def _trainer_arguments(
    train: dict[str, Any], given: dict[str, Any], evaluation: Evaluation
) -> dict[str, Any]:
    """What the arguments class gets beyond ``train``; sets ``eval_strategy`` and, for a
    selected checkpoint, ``save_steps`` in ``train`` (recorded in ``config.yaml``)."""
    if not evaluation.enabled:
        return {}
    train["eval_strategy"] = train.get("eval_strategy") or "steps"
    if evaluation.criterion is None:
        return {}
    if given.get("save_steps") is None:
        train["save_steps"] = evaluation.steps
    return {  # eval_select: ftx.validation.Selection's count of improvements
        "load_best_model_at_end": True,
        "metric_for_best_model": "eval_select",
        "greater_is_better": True,
        "restore_callback_states_from_checkpoint": True,
    }
