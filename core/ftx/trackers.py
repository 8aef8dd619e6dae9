"""ftx's own numbers in the experiment trackers of ``train.report_to``.

The Trainer's integration callbacks (TensorBoard, Weights & Biases, MLflow, Trackio) log the
training loss, learning rate and gradient norm per step. What only ftx knows — tokens/s, peak
memory, the held-out score before and after, trainable parameters, the resolved config — is known
once the run has been scored, after those callbacks closed their run. :func:`log_run_facts`
then writes it into the same tracker run, through each tracker's own API:

* ``tensorboard``: scalars ``ftx/<name>`` at the last step and the config as text, in the
  callback's log directory (``RUN/checkpoints/runs/<time>`` unless ``TENSORBOARD_LOGGING_DIR``);
* ``wandb``: the run's summary and config (``ftx.*``), then the run is finished (offline:
  ``WANDB_MODE=offline`` needs no account);
* ``mlflow``: metrics ``ftx.<name>`` and params ``ftx.<section>.<key>`` on the run the callback
  used (``MLFLOW_TRACKING_URI``, default ``./mlruns``);
* ``trackio``: one more log row of ``ftx/<name>`` values in the same project and run.

Where each wrote is returned (``summary.json`` ``trackers``). A tracker that fails here warns
and never fails a trained run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FACTS = (
    "tokens_per_s",
    "tokens",
    "train_time_s",
    "peak_memory_bytes",
    "trainable_params",
    "total_params",
    "final_loss",
    "steps",
)


def run_facts(summary: dict[str, Any]) -> dict[str, float]:
    """The numbers of ``summary`` a tracker shows: :data:`FACTS`, the held-out scores
    (``eval_before``/``eval_after``, ``task_eval_*``: their ``score``), the exported step
    (``best_step``) and, for a run stopped early, ``stopped_early_step``."""
    facts = {k: summary[k] for k in FACTS if isinstance(summary.get(k), (int, float))}
    for key, fact in (("best", "best_step"), ("stopped_early", "stopped_early_step")):
        step = (summary.get(key) or {}).get("step")
        if isinstance(step, int):
            facts[fact] = step
    for key in ("eval_before", "eval_after", "task_eval_before", "task_eval_after"):
        score = (summary.get(key) or {}).get("score")
        if isinstance(score, (int, float)):
            facts[key] = score
    return {k: float(v) for k, v in facts.items()}


def config_params(config: dict[str, Any]) -> dict[str, str]:
    """The resolved config flattened to ``section.key -> str(value)``."""
    return {
        f"{section}.{key}": str(value)
        for section, values in config.items()
        if isinstance(values, dict)
        for key, value in values.items()
    }


def log_run_facts(
    trainer: Any, summary: dict[str, Any], config: dict[str, Any], console: Any
) -> dict[str, str]:
    """Log ftx's numbers and the config to every tracker callback ``trainer`` has; return
    ``{tracker: where it wrote}``."""
    facts, params = run_facts(summary), config_params(config)
    step = int(summary.get("steps") or 0)
    written = {}
    for callback in trainer.callback_handler.callbacks:
        log = LOGGERS.get(type(callback).__name__)
        if log is None:
            continue
        name = log.__name__.removeprefix("_")
        try:
            written[name] = log(callback, trainer, facts, params, step)
        except Exception as exc:  # the run is trained and scored: a tracker only warns
            console.print(
                f"[yellow]warning:[/] could not log ftx's numbers to {name}: "
                f"{type(exc).__name__}: {exc}",
                highlight=False,
            )
    return written


def _tensorboard(callback: Any, trainer: Any, facts: dict, params: dict, step: int) -> str:
    logdir = callback.logging_dir or str(Path(trainer.args.output_dir) / "runs")
    writer = callback._SummaryWriter(log_dir=logdir)
    try:
        for name, value in facts.items():
            writer.add_scalar(f"ftx/{name}", value, step)
        text = "\n".join(f"    {k}: {v}" for k, v in params.items())
        writer.add_text("ftx/config", text, step)
    finally:
        writer.close()
    return logdir


def _wandb(callback: Any, trainer: Any, facts: dict, params: dict, step: int) -> str:
    import wandb

    run = wandb.run
    if run is None:
        raise RuntimeError("the Trainer's wandb run is no longer active")
    run.config.update({f"ftx.{k}": v for k, v in params.items()}, allow_val_change=True)
    run.summary.update({f"ftx/{k}": v for k, v in facts.items()})
    where = str(Path(run.dir).parent)
    wandb.finish()  # the next run in this process (a notebook) starts its own
    return where


def _mlflow(callback: Any, trainer: Any, facts: dict, params: dict, step: int) -> str:
    import mlflow

    active = mlflow.active_run() or mlflow.last_active_run()
    if active is None:
        raise RuntimeError("the Trainer's mlflow run is not known")
    run_id = active.info.run_id
    client = mlflow.MlflowClient()
    for name, value in facts.items():
        client.log_metric(run_id, f"ftx.{name}", value, step=step)
    for key, value in params.items():
        client.log_param(run_id, f"ftx.{key}", value[:6000])
    return f"{mlflow.get_tracking_uri()} run {run_id}"


def _trackio(callback: Any, trainer: Any, facts: dict, params: dict, step: int) -> str:
    import trackio

    project, name = trainer.args.project, trainer.args.run_name
    trackio.init(project=project, name=name, resume="allow", config=params)
    trackio.log({f"ftx/{k}": v for k, v in facts.items()}, step=step)
    trackio.finish()
    return f"trackio project {project} run {name}"


LOGGERS = {
    "TensorBoardCallback": _tensorboard,
    "WandbCallback": _wandb,
    "MLflowCallback": _mlflow,
    "TrackioCallback": _trackio,
}
"""Integration callback class name (transformers.integrations) -> how ftx logs to it."""
