"""Execute a prepared run: claim the directory, walk the hooks, score, report.

:func:`execute` always leaves a ``summary.json`` whose ``status`` is ``finished``,
``interrupted`` or ``failed``, except for bad input found late, which leaves the disk as it was
(an earlier run replaced with ``--overwrite`` put back), and a disk too full to take even that
record (the console says so). SIGTERM and SIGUSR1 count as Ctrl-C in every phase
(:mod:`ftx.stop_signals`). Failures ftx can explain — out of memory, a full disk
(:mod:`ftx.runner.failures`), a non-finite loss — end as one message without a traceback.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ftx import allocator, openmp
from ftx.errors import BadInput, RunFailed, RunInterrupted
from ftx.forgetting import forgetting_enabled
from ftx.models import parent_run
from ftx.plugins import call_first
from ftx.quiet import quiet_libraries
from ftx.ranks import is_main_process
from ftx.runner.checkpoints import newest_checkpoint, remove_incomplete_checkpoints
from ftx.runner.failures import (
    NonFiniteLoss,
    disk_full_advice,
    disk_full_cause,
    is_out_of_memory,
    lighter_methods,
    out_of_memory_advice,
)
from ftx.runner.memory import peak_rss_bytes, reset_peak_rss
from ftx.runner.provenance import git_revision, library_versions
from ftx.runner.request import PreparedRun
from ftx.runner.rundir import RunDirectory, write_config, write_summary
from ftx.runner.scoring import score_base_before, score_dir, score_forgetting, score_task
from ftx.runner.tokenizing import tokenize_for_run
from ftx.runner.training import build_trainer, count_parameters, train
from ftx.stop_signals import signals_interrupt

UNSAFE_MODEL_FLAGS = (
    ("trust_remote_code", "runs the model repository's own Python code"),
    ("allow_pickle", "unpickles weights, which can run arbitrary code"),
)
# Facts of an interrupted run that a resumed one keeps when it has nothing left to train.
CARRIED_ON_RESUME = (
    "eval_before",
    "eval_before_from",
    "task_eval_before",
    "train_time_s",
    "tokens",
    "tokens_per_s",
    "train_loss",
)


class RunRecord:
    """``summary.json`` of the run in progress: written by the main process only."""

    def __init__(
        self, run_dir: RunDirectory, summary: dict[str, Any], *, main: bool, console: Any = None
    ) -> None:
        self.run_dir = run_dir
        self.summary = summary
        self.main = main
        self.console = console
        self.started = time.time()
        self.baseline = reset_peak_rss()

    def save(self) -> None:
        if self.main:
            write_summary(self.run_dir.path, self.summary)

    def measure_from_here(self) -> None:
        self.baseline = reset_peak_rss()

    def finish(self, status: str, **extra: Any) -> dict[str, Any]:
        """Record how the run ended in ``summary.json``, ``report.md`` and ``loss.png``.

        A run that did not finish is recorded as best it can be: when the record cannot be
        written — the disk that failed the run is full, or the signal that stopped it broke a
        library half-way through its first import (SIGINT during ``import matplotlib``) — the
        console says so and the run's own ending is what is raised. A finished run whose record
        cannot be written raises: it is not finished on disk."""
        s = self.summary
        s.update(status=status, wall_time_s=round(time.time() - self.started, 2), **extra)
        s["peak_memory_bytes"] = peak_rss_bytes()
        s["peak_memory_above_baseline_bytes"] = s["peak_memory_bytes"] - self.baseline
        if self.main:
            try:
                self.save()
                from ftx.report import write_reports

                write_reports(self.run_dir.path, s)
            except Exception as exc:
                if status == "finished" or self.console is None:
                    raise
                self.console.print(
                    f"[yellow]warning:[/] could not record the {status} run in "
                    f"{self.run_dir.path}: {type(exc).__name__}: {exc}",
                    highlight=False,
                )
        return s


def execute(prep: PreparedRun, console: Any) -> dict[str, Any]:
    """Run the prepared job end to end; return the summary written to ``summary.json``."""
    quiet_libraries()
    from ftx.context import RunContext
    from ftx.models import load_tokenizer, resolve_model

    if prep.device.kind == "cpu":
        allocator.keep_freed_memory()
    mcfg = prep.resolved.config["model"]
    for flag, risk in UNSAFE_MODEL_FLAGS:
        if mcfg[flag]:
            console.print(f"[yellow]warning:[/] model.{flag} is on: ftx {risk}")
    model_path = resolve_model(mcfg["name"])
    tokenizer = load_tokenizer(model_path)
    console.print(
        f"[bold]ftx[/] {prep.plugin.name} × {prep.objective.name} · model {model_path} · "
        f"device {prep.device.name}"
    )
    if prep.resume_from is not None:
        console.print(f"resuming from {prep.resume_from.name} ({prep.output_dir})", highlight=False)
    rows, stats = tokenize_for_run(prep, tokenizer, console)

    main = is_main_process()
    run_dir = prep.run_dir or RunDirectory(
        prep.output_dir, replace=False, resume=prep.resume_from is not None, chosen_by_user=True
    )
    if main:
        run_dir.claim()
    try:
        prep.output_dir = run_dir.path
        run = RunContext(
            plugin=prep.plugin.name,
            config=prep.resolved.config,
            options=prep.resolved.options,
            train_args=prep.resolved.train_args,
            model_path=model_path,
            output_dir=run_dir.path,
            device=prep.device,
            dtype=prep.dtype,
            attn_implementation=prep.attn_implementation,
            console=console,
            objective=prep.objective.name,
            objective_options=prep.resolved.objective_options,
            traits=prep.traits,
        )
        record = RunRecord(run_dir, _first_summary(prep, run, stats), main=main, console=console)
        summary = _guarded(prep, run, record, tokenizer, rows)
    finally:
        if main:
            run_dir.release()
    return summary


def _guarded(
    prep: PreparedRun, run: Any, record: RunRecord, tokenizer: Any, rows: tuple[Any, Any]
) -> dict[str, Any]:
    """Walk the hooks and turn every way a run can end into its status on disk."""
    run_dir, console = record.run_dir, run.console
    try:
        with signals_interrupt():
            summary = _walk_hooks(prep, run, record, tokenizer, rows)
    except BadInput:
        # Bad input found late (e.g. a layer index checked against the loaded model): leave
        # the disk as it was — no new run directory, the replaced one (--overwrite) restored.
        if record.main:
            run_dir.bad_input()
        raise
    except RunInterrupted:
        raise
    except KeyboardInterrupt as exc:
        checkpoint = newest_checkpoint(run_dir.path / "checkpoints")
        record.finish("interrupted", interrupted_by=str(exc) or "SIGINT")
        if checkpoint is None:
            console.print("[yellow]interrupted[/] before the first checkpoint")
            if record.main:
                _say(console, run_dir.failed(label="interrupted"))
        else:
            console.print(
                f"[yellow]interrupted[/]; resume from {checkpoint.name} with:\n"
                f"  ftx run --resume --output {run_dir.path}"
            )
            _say(console, run_dir.interrupted())
        raise
    except BaseException as exc:
        out_of_memory = is_out_of_memory(exc)
        disk_full = disk_full_cause(exc, run_dir.path)
        if isinstance(exc, NonFiniteLoss):
            error = str(exc)
        elif out_of_memory:
            error = f"out of memory: {exc}"
        elif disk_full:
            error = f"{disk_full}: {type(exc).__name__}: {exc}"
        else:
            error = f"{type(exc).__name__}: {exc}"
        if disk_full and record.main:
            # The checkpoint that did not fit holds room the failure record needs.
            remove_incomplete_checkpoints(run_dir.path / "checkpoints")
        record.finish("failed", error=error)
        kept_aside = run_dir.failed() if record.main else None
        _say(console, kept_aside)
        if out_of_memory:
            raise RunFailed(
                out_of_memory_advice(run, exc, lighter_methods=lighter_methods(run))
            ) from None
        if disk_full:
            # Moved aside (the run it replaced is back in its place): not resumable in place.
            checkpoint = None if kept_aside else newest_checkpoint(run_dir.path / "checkpoints")
            raise RunFailed(
                disk_full_advice(exc, disk_full, run_dir=run_dir.path, checkpoint=checkpoint)
            ) from None
        raise
    if record.main:
        _say(console, run_dir.finished())
    return summary


def _walk_hooks(
    prep: PreparedRun, run: Any, record: RunRecord, tokenizer: Any, rows: tuple[Any, Any]
) -> dict[str, Any]:
    """Record the run (``config.yaml``, a first ``summary.json``), then the hook sequence:
    load_model -> select_trainable -> (trainer hooks) -> train -> export, with held-out scoring
    of the base model before and of ``model/`` after."""
    summary, console = record.summary, run.console
    if record.main:
        write_config(run.output_dir, run.plugin, run.config)
        record.save()
    metric = run.config["data"]["eval_metric"]
    scoring = bool(prep.eval_rows) and record.main
    if record.main:
        score_base_before(prep, run, summary, console, save=record.save)
    record.measure_from_here()  # the training peak is measured from here
    # train.seed governs everything random from here on, the plugin's own initialisation
    # (LoRA/IA3 adapters, new heads) included: the Trainer seeds only once it is built.
    from transformers import set_seed

    set_seed(int(run.train_args["seed"]))  # always set: config.CORE_TRAIN_DEFAULTS
    model, summary["hooks"]["load_model"] = call_first(prep.pm, "load_model", run=run)
    model, summary["hooks"]["select_trainable"] = call_first(
        prep.pm, "select_trainable", run=run, model=model
    )
    trainable, total = count_parameters(model)
    if trainable == 0:
        raise BadInput(
            f"plugin '{prep.plugin.name}' left no trainable parameters",
            hint=f"check the method options (`ftx plugins show {prep.plugin.name}`)",
        )
    summary.update(trainable_params=trainable, total_params=total)
    console.print(
        f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.2f}%)"
    )
    built = build_trainer(
        run,
        prep.pm,
        model,
        tokenizer,
        rows,
        resume_from=prep.resume_from,
        summary=summary,
        evaluation=prep.resolved.evaluation,
        held_out=prep.eval_rows,
    )
    summary.update(train(built, prep.resume_from))
    if built.guard.bad_step is not None:
        raise NonFiniteLoss(
            built.guard.bad_step, newest_checkpoint(run.output_dir / "checkpoints"), run
        )
    if built.stopper.signal_name is not None:
        record.finish("interrupted", interrupted_by=built.stopper.signal_name)
        cmd = f"ftx run --resume --output {run.output_dir}"
        console.print(
            f"[yellow]interrupted by {built.stopper.signal_name}[/]; checkpoint saved. "
            f"Resume with:\n  {cmd}"
        )
        _say(console, record.run_dir.interrupted())
        raise RunInterrupted(cmd)
    # Every rank calls export (sharded engines gather collectively); only rank 0 writes.
    artifacts, summary["hooks"]["export"] = call_first(
        prep.pm, "export", run=run, model=model, tokenizer=tokenizer, trainer=built.trainer
    )
    summary["artifacts"] = artifacts
    quant = (prep.resolved.config.get("export") or {}).get("gguf")
    if quant and run.is_main_process:
        artifacts["gguf"] = str(write_gguf(run.output_dir, quant, console))
    summary.update(run.state.get("summary", {}))  # facts the plugin reported (run.report)
    if scoring:
        console.print("scoring the trained model (model/)…")
        model_dir = run.output_dir / "model"
        summary["eval_after"], summary["hooks"]["score_heldout"] = score_dir(
            prep.pm, run, model_dir, prep.eval_rows
        )
        console.print(f"  after: {metric} = {summary['eval_after']['score']:.3f}")
    if prep.task_rows and record.main:
        summary["task_eval_after"] = score_task(prep, run, run.output_dir / "model")
        console.print(f"  task after: {summary['task_eval_after']['score']:.3f}")
    if record.main and forgetting_enabled(run.config["data"]):
        summary["forgetting"] = score_forgetting(run, run.output_dir / "model")
    if record.main:  # model cards, and ftx's own numbers beside the trackers' loss
        from ftx.model_card import write_model_cards
        from ftx.trackers import log_run_facts

        write_model_cards(run.output_dir, summary, run.config)

        facts = {**summary, "peak_memory_bytes": peak_rss_bytes()}
        summary["trackers"] = log_run_facts(built.trainer, facts, run.config, console)
    return record.finish("finished")


def write_gguf(output_dir: Path, quant: str, console: Any) -> Path:
    """``export.gguf``: the finished model/ as a GGUF (and Modelfile) in the run directory."""
    from ftx.gguf_export import check_gguf_export, export_gguf

    console.print(f"writing the GGUF ({quant})…")
    path = export_gguf(check_gguf_export(output_dir, quant, overwrite=True))
    console.print(f"  {path}")
    return path


def _first_summary(prep: PreparedRun, run: Any, stats: dict[str, Any]) -> dict[str, Any]:
    dcfg = run.config["data"]
    summary: dict[str, Any] = {
        "status": "running",
        "plugin": prep.plugin.name,
        "method": prep.plugin.distribution,
        "objective": prep.objective.name,
        "objective_distribution": prep.objective.distribution,
        "model": str(run.model_path),
        "device": prep.device.name,
        "dtype": run.dtype,
        "bf16_autocast": bool(run.train_args.get("bf16")),
        "precision": _precision(run),
        "attn_implementation": run.attn_implementation,
        "calibration": _calibration(prep),
        "omp_wait_policy": openmp.DECISION,
        "allocator": allocator.DECISION,
        "data": stats,
        "data_files": {"train": dcfg["path"], "eval": dcfg["eval"]},
        "data_hashes": prep.data_files,
        "versions": library_versions(),
        "git_revision": git_revision(),
        "hooks": {},
    }
    if prep.run_dir is not None and prep.run_dir.replaced is not None:
        summary["replaces"] = str(prep.run_dir.replaced)
    parent = parent_run(run.model_path)
    if parent is not None:  # --model RUN_DIR: this run continues that one's model
        summary["parent_run"] = str(parent)
    if prep.resume_from is not None:
        summary["resumed_from"] = prep.resume_from.name
        for key in CARRIED_ON_RESUME:
            if key in prep.prior_summary:
                summary[key] = prep.prior_summary[key]
    return summary


def _calibration(prep: PreparedRun) -> dict[str, Any] | None:
    """What this CPU measured and chose (:mod:`ftx.calibration`); None off the CPU."""
    from ftx import calibration

    if prep.device.kind != "cpu" or calibration.APPLIED is None:
        return None
    return calibration.APPLIED.as_summary()


def _precision(run: Any) -> dict[str, Any]:
    """What ``summary.json`` records of the run's precision (:mod:`ftx.precision`)."""
    from ftx.precision import training_precision

    chosen = training_precision(run.dtype, run.train_args)
    return {
        "mode": chosen.mode,
        "master_weights": chosen.weights,
        "autocast": chosen.autocast,
        "loss_scaling": chosen.loss_scaling,
        "description": chosen.describe(),
    }


def _say(console: Any, line: str | None) -> None:
    if line:
        console.print(line)
