"""Held-out scoring of a saved model directory, before and after training, by the objective."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftx.plugins import call_first
from ftx.runner.base_scores import fingerprint, shared_score


def score_dir(pm: Any, run: Any, model_dir: Path, rows: list[Any]) -> tuple[dict[str, Any], str]:
    """Load ``model_dir`` for inference (plain weights, no adapters) and let the objective's
    ``score_heldout`` score it on ``rows``; return ``(result, who answered)``."""
    from ftx.inference import load_for_inference

    loaded = load_for_inference(model_dir)
    result, who = call_first(
        pm, "score_heldout", run=run, model=loaded.model, tokenizer=loaded.tokenizer, rows=rows
    )
    if result is None:
        raise RuntimeError(f"no objective scored the held-out rows ({run.objective})")
    return result, who


def score_task(prep: Any, run: Any, model_dir: Path) -> dict[str, Any]:
    """Score ``model_dir`` on ``data.task_eval`` with the default objective's first metric."""
    import dataclasses

    traits, _ = call_first(prep.task_pm, "objective_traits")
    data = {**run.config["data"], "eval_metric": traits.metrics[0]}
    task_run = dataclasses.replace(run, config={**run.config, "data": data})
    result, _ = score_dir(prep.task_pm, task_run, model_dir, prep.task_rows)
    return result


def score_forgetting(run: Any, model_dir: Path) -> dict[str, Any]:
    """``summary.json``'s ``forgetting`` for a finished run (``data.eval_forgetting``): the
    trained ``model_dir`` against the base the run trained from (loaded alongside it; the
    base's answers come from the cache when a run on this base measured them already).
    ``seconds`` covers loading the trained model too. Progress goes to ``run.console``."""
    import time

    from ftx.forgetting.measure import measure_forgetting
    from ftx.inference import load_for_inference
    from ftx.report import forgetting_line

    run.console.print("measuring forgetting against the base model…")
    started = time.time()
    tuned = load_for_inference(model_dir)
    record = measure_forgetting(tuned, run.model_path, template=run.config["data"]["template"])
    record["seconds"] = round(time.time() - started, 2)
    run.console.print(f"  {forgetting_line(record)}")
    return record


def score_base_before(
    prep: Any, run: Any, summary: dict[str, Any], console: Any, *, save: Callable[[], None]
) -> None:
    """Score the base model before training, on the main process: the held-out rows into
    ``summary["eval_before"]`` and the task rows into ``summary["task_eval_before"]``, each
    unless the summary already has it (a resumed run keeps its "before"), calling ``save``
    after each. Under ``ftx compare`` (``prep.request.base_scores``) a score another run of
    the same compare computed for the same base and rows is reused
    (:mod:`ftx.runner.base_scores`) and ``summary["eval_before_from"]`` names its file."""
    metric = run.config["data"]["eval_metric"]
    shared = prep.request.base_scores
    shared_file = Path(shared) if shared else None
    if prep.eval_rows and "eval_before" not in summary:

        def score_base() -> dict[str, Any]:
            console.print(f"scoring the base model on {len(prep.eval_rows)} held-out rows…")
            return score_dir(prep.pm, run, run.model_path, prep.eval_rows)[0]

        summary["eval_before"], reused = shared_score(
            shared_file, fingerprint("eval_before", run, prep.eval_rows), score_base
        )
        said = ""
        if reused:  # another run of the same compare scored this base model on these rows
            summary["eval_before_from"] = str(shared_file)
            said = f" (scored once for the compare: {shared_file})"
        console.print(f"  before: {metric} = {summary['eval_before']['score']:.3f}{said}")
        save()
    if prep.task_rows and "task_eval_before" not in summary:
        console.print(f"scoring the base model on {len(prep.task_rows)} task rows…")
        summary["task_eval_before"], _ = shared_score(
            shared_file,
            fingerprint("task_eval_before", run, prep.task_rows),
            lambda: score_task(prep, run, run.model_path),
        )
        console.print(f"  task before: {summary['task_eval_before']['score']:.3f}")
        save()
