"""One fine-tuning run: validate everything, then walk the plugin through its hooks.

:func:`prepare` does all the checking that can fail because of the user (plugin name, config,
model path, data rows, output directory) and has no side effects: a :class:`BadInput` from it
leaves nothing behind. :func:`execute` then loads, trains, exports, scores and reports, and
always leaves a ``summary.json`` whose ``status`` is ``finished``, ``interrupted`` or ``failed``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ftx import allocator, openmp
from ftx import config as cfg_mod
from ftx.errors import BadInput, RunFailed, RunInterrupted
from ftx.plugins import PluginInfo, call_all, call_first, get_plugin, manager_for


@dataclass
class RunRequest:
    """What the user asked for on the command line."""

    plugin: str | None
    config_file: str | None = None
    model: str | None = None
    data: str | None = None
    output: str | None = None
    sets: list[str] = field(default_factory=list)
    resume: bool = False
    overwrite: bool = False
    force: bool = False


@dataclass
class PreparedRun:
    """A validated run, ready to execute."""

    request: RunRequest
    plugin: PluginInfo
    pm: Any
    device: Any
    resolved: cfg_mod.ResolvedConfig
    output_dir: Path
    train_convs: list[Any]
    eval_convs: list[Any]
    data_files: dict[str, str]
    resume_from: Path | None = None


def default_output(plugin: str) -> Path:
    return Path("runs") / f"{plugin}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _is_nonempty_dir(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def _resume_source(req: RunRequest) -> tuple[dict[str, Any], Path]:
    """For ``--resume``: the run's saved config and its newest complete checkpoint."""
    if not req.output:
        raise BadInput("--resume needs --output RUN_DIR (the run to continue)")
    run_dir = Path(req.output)
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        raise BadInput(f"--resume: {run_dir} is not an ftx run directory (no config.yaml)")
    summary = _read_json(run_dir / "summary.json")
    if summary.get("status") == "finished":
        raise BadInput(
            f"--resume: run {run_dir} already finished; nothing to resume",
            hint="start a new run with a different --output, or pass --overwrite",
        )
    checkpoint = newest_checkpoint(run_dir / "checkpoints")
    if checkpoint is None:
        raise BadInput(
            f"--resume: run {run_dir} has no complete checkpoint to continue from",
            hint=f"start it again with: ftx run --overwrite --output {run_dir}",
        )
    return cfg_mod.load_yaml(saved.read_text()), checkpoint


def newest_checkpoint(folder: Path) -> Path | None:
    """The highest-step complete ``checkpoint-N``.

    The Trainer writes ``trainer_state.json`` last (after weights, optimizer, scheduler and RNG
    state), so a checkpoint whose state file is missing or unparsable was cut short and is
    never chosen.
    """
    if not folder.is_dir():
        return None
    done = [
        p
        for p in folder.glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and _read_json(p / "trainer_state.json")
    ]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def prepare(req: RunRequest) -> PreparedRun:
    """Validate the request; raise BadInput on any user error. No files are written."""
    from ftx import data as data_mod
    from ftx.device import detect
    from ftx.models import check_model_spec, check_weights_format

    saved: dict[str, Any] = {}
    resume_from = None
    if req.resume:
        saved, resume_from = _resume_source(req)
        req.plugin = req.plugin or saved.get("plugin")
    if not req.plugin and req.config_file:
        req.plugin = cfg_mod.load_file(req.config_file).get("plugin")
    if not req.plugin:
        raise BadInput("--plugin is required (see `ftx plugins` for what is installed)")
    plugin = get_plugin(req.plugin)
    pm = manager_for(plugin)
    device = detect()
    declared, _ = call_first(pm, "method_options")
    train_defaults, _ = call_first(pm, "train_defaults", device=device)

    # A resumed run starts from its saved, fully resolved config.yaml.
    base = {s: dict(saved.get(s) or {}) for s in cfg_mod.SECTIONS}
    file_cfg = cfg_mod.load_file(req.config_file)
    for section in cfg_mod.SECTIONS:
        base[section].update(file_cfg.get(section) or {})
    flags = {"model": {"name": req.model}, "data": {"path": req.data}}
    raw = cfg_mod.merge(base, flags, req.sets, plugin=req.plugin)
    resolved = cfg_mod.resolve(
        raw,
        declared_options=list(declared or []),
        plugin=plugin.name,
        plugin_train_defaults=train_defaults,
        device=device,
    )
    mcfg = resolved.config["model"]
    check_model_spec(mcfg["name"])
    check_weights_format(mcfg["name"], allow_pickle=mcfg["allow_pickle"])

    dcfg = resolved.config["data"]
    train_path, eval_path = dcfg["path"], dcfg["eval"]
    if train_path is None:
        demo_train, demo_eval = data_mod.demo_data_paths()
        train_path = str(demo_train)
        if eval_path is None and not dcfg["eval_ratio"]:
            eval_path = str(demo_eval)
    convs = data_mod.load_conversations(train_path, dcfg["format"])
    if eval_path is not None:
        eval_convs = data_mod.load_conversations(eval_path, dcfg["format"])
    elif dcfg["eval_ratio"]:
        convs, eval_convs = data_mod.split_eval(
            convs, dcfg["eval_ratio"], resolved.train_args.get("seed", 42)
        )
    else:
        eval_convs = []
    if dcfg["eval_limit"]:
        eval_convs = eval_convs[: dcfg["eval_limit"]]
    dcfg["path"], dcfg["eval"] = train_path, eval_path
    files = {"train": train_path, **({"eval": eval_path} if eval_path else {})}
    hashes = {k: file_hash(v) for k, v in files.items()}

    output = Path(req.output) if req.output else default_output(plugin.name)
    if req.resume:
        old = _read_json(output / "summary.json").get("data_hashes") or {}
        changed = [k for k, v in hashes.items() if old.get(k) not in (None, v)]
        if changed and not req.force:
            raise BadInput(
                f"--resume: the {', '.join(changed)} data changed since run {output} started",
                hint="pass --force to resume anyway, or start a new run",
            )
    # Only rank 0 checks: in a multi-process run it may already have created the directory
    # before another rank gets here (the launching process validated it once, up front).
    elif _is_nonempty_dir(output) and not req.overwrite and os.environ.get("RANK", "0") == "0":
        raise BadInput(
            f"output directory {output} already exists and is not empty",
            hint="choose another --output, continue it with --resume, or pass --overwrite",
        )
    elif output.exists() and not output.is_dir():
        raise BadInput(f"--output {output} exists and is not a directory")
    return PreparedRun(
        request=req,
        plugin=plugin,
        pm=pm,
        device=device,
        resolved=resolved,
        output_dir=output,
        train_convs=convs,
        eval_convs=eval_convs,
        data_files=hashes,
        resume_from=resume_from,
    )


def file_hash(path: str | Path) -> str:
    """sha256 of a file, or of a directory's files in sorted order (first 16 hex digits)."""
    import hashlib

    digest = hashlib.sha256()
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def _proc_status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> int:
    """Start a fresh memory high-water mark and return the current resident memory (bytes).

    On Linux, writing 5 to ``/proc/self/clear_refs`` resets ``VmHWM``; unlike ``ru_maxrss`` it
    is neither inherited from the parent process nor inflated by earlier phases of the run
    (such as scoring the base model). Elsewhere the peak so far is the best available.
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return peak_rss_bytes()
    return _proc_status_bytes("VmRSS") or peak_rss_bytes()


def peak_rss_bytes() -> int:
    """Peak resident memory since the last :func:`reset_peak_rss` (``VmHWM``), or of the
    process's whole life where the kernel does not offer that (``ru_maxrss``)."""
    hwm = _proc_status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def quiet_libraries() -> None:
    """Silence library chatter a user cannot act on (deprecation notices, per-load progress
    bars); ftx prints its own progress. Real errors still surface."""
    import warnings

    from transformers.utils import logging as hf_logging

    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=".*use_cache=True.*")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def execute(prep: PreparedRun, console: Any) -> dict[str, Any]:
    """Run the prepared job end to end; return the summary written to ``summary.json``."""
    quiet_libraries()
    from ftx import data as data_mod
    from ftx.device import choose_attention, choose_dtype
    from ftx.models import load_tokenizer, resolve_model

    resolved = prep.resolved
    mcfg, dcfg = resolved.config["model"], resolved.config["data"]
    started = time.time()
    if prep.device.kind == "cpu":
        allocator.keep_freed_memory()
    for flag, risk in (
        ("trust_remote_code", "runs the model repository's own Python code"),
        ("allow_pickle", "unpickles weights, which can run arbitrary code"),
    ):
        if mcfg[flag]:
            console.print(f"[yellow]warning:[/] model.{flag} is on: ftx {risk}")
    model_path = resolve_model(mcfg["name"])
    tokenizer = load_tokenizer(model_path)
    console.print(
        f"[bold]ftx[/] {prep.plugin.name} · model {model_path} · device {prep.device.name}"
    )

    tokenized = data_mod.tokenize_dataset(
        prep.train_convs,
        tokenizer,
        max_length=dcfg["max_length"],
        template=dcfg["template"],
        train_on=dcfg["train_on"],
    )
    if not tokenized.examples:
        raise BadInput(
            f"{dcfg['path']}: no trainable rows left after truncation to {dcfg['max_length']}",
            hint="raise data.max_length",
        )
    stats = {k: v for k, v in tokenized.stats.items() if k != "lengths"}
    console.print(
        f"data: {stats.get('kept')} rows, {stats.get('tokens')} tokens "
        f"({stats.get('truncated', 0)} truncated, {stats.get('dropped', 0)} dropped)"
    )

    out = prep.output_dir
    main = os.environ.get("RANK", "0") == "0"
    claim = OutputClaim(out, replace=prep.request.overwrite and not prep.request.resume)
    if main:
        claim.take()
    from ftx.context import RunContext

    run = RunContext(
        plugin=prep.plugin.name,
        config=resolved.config,
        options=resolved.options,
        train_args=resolved.train_args,
        model_path=model_path,
        output_dir=out,
        device=prep.device,
        dtype=choose_dtype(mcfg["dtype"], prep.device),
        attn_implementation=choose_attention(mcfg["attn_implementation"], prep.device),
        console=console,
    )
    summary: dict[str, Any] = {
        "status": "running",
        "plugin": prep.plugin.name,
        "method": prep.plugin.distribution,
        "model": str(model_path),
        "device": prep.device.name,
        "dtype": run.dtype,
        "bf16_autocast": bool(run.train_args.get("bf16")),
        "attn_implementation": run.attn_implementation,
        "omp_wait_policy": openmp.DECISION,
        "allocator": allocator.DECISION,
        "data": stats,
        "data_files": {"train": dcfg["path"], "eval": dcfg["eval"]},
        "data_hashes": prep.data_files,
        "versions": library_versions(),
        "git_revision": git_revision(),
        "hooks": {},
    }
    if main:
        _write_config(run, prep)
        _write_summary(out, summary)

    def finish(status: str, **extra: Any) -> dict[str, Any]:
        summary.update(status=status, wall_time_s=round(time.time() - started, 2), **extra)
        summary["peak_memory_bytes"] = peak_rss_bytes()
        summary["peak_memory_above_baseline_bytes"] = summary["peak_memory_bytes"] - baseline
        if main:
            _write_summary(out, summary)
            from ftx.report import write_reports

            write_reports(out, summary)
        return summary

    baseline = reset_peak_rss()
    eval_cfg = {
        "metric": dcfg["eval_metric"],
        "template": dcfg["template"],
        "max_new_tokens": dcfg["eval_max_new_tokens"],
        "max_length": dcfg["max_length"],
    }
    try:
        if prep.eval_convs and main and prep.resume_from is None:
            console.print(f"scoring the base model on {len(prep.eval_convs)} held-out rows…")
            summary["eval_before"] = _score_dir(model_path, prep.eval_convs, eval_cfg)
            console.print(
                f"  before: {dcfg['eval_metric']} = {summary['eval_before']['score']:.3f}"
            )
            _write_summary(out, summary)
        elif prep.resume_from is not None:
            prior = _read_json(out / "summary.json")
            if "eval_before" in prior:
                summary["eval_before"] = prior["eval_before"]
        baseline = reset_peak_rss()  # the training peak is measured from here
        # train.seed governs everything random from here on, the plugin's own initialisation
        # (LoRA/IA3 adapters, new heads) included: the Trainer seeds only once it is built.
        from transformers import set_seed

        set_seed(int(run.train_args["seed"]))  # always set: config.CORE_TRAIN_DEFAULTS
        model, who = call_first(prep.pm, "load_model", run=run)
        summary["hooks"]["load_model"] = who
        model, who = call_first(prep.pm, "select_trainable", run=run, model=model)
        summary["hooks"]["select_trainable"] = who
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
        trainer, guard, stopper = _build_trainer(run, prep, model, tokenizer, tokenized, summary)
        stopper.install()
        train_started = time.time()
        try:
            result = trainer.train(
                resume_from_checkpoint=str(prep.resume_from) if prep.resume_from else None
            )
        finally:
            stopper.uninstall()
        train_time = time.time() - train_started
        tokens = _tokens_seen(trainer)
        summary.update(
            steps=trainer.state.global_step,
            max_steps=trainer.state.max_steps,
            train_time_s=round(train_time, 2),
            tokens=tokens,
            tokens_per_s=round(tokens / train_time, 1) if train_time > 0 and tokens else None,
            final_loss=_final_loss(trainer),
            train_loss=round(float(result.training_loss), 6),
        )
        if guard.bad_step is not None:
            ckpt = newest_checkpoint(out / "checkpoints")
            raise NonFiniteLoss(guard.bad_step, ckpt, run)
        if stopper.signal_name is not None:
            finish("interrupted", interrupted_by=stopper.signal_name)
            cmd = f"ftx run --resume --output {out}"
            console.print(
                f"[yellow]interrupted by {stopper.signal_name}[/]; checkpoint saved. "
                f"Resume with:\n  {cmd}"
            )
            raise RunInterrupted(cmd)
        # Every rank calls export (sharded engines gather collectively); only rank 0 writes.
        artifacts, who = call_first(
            prep.pm, "export", run=run, model=model, tokenizer=tokenizer, trainer=trainer
        )
        summary["hooks"]["export"] = who
        summary["artifacts"] = artifacts
        if prep.eval_convs and main:
            console.print("scoring the trained model (model/)…")
            summary["eval_after"] = _score_dir(out / "model", prep.eval_convs, eval_cfg)
            console.print(f"  after: {dcfg['eval_metric']} = {summary['eval_after']['score']:.3f}")
        summary = finish("finished")
        claim.commit()
        return summary
    except BadInput:
        # Bad input found late (e.g. a layer index checked against the loaded model): leave
        # the disk as it was — no new run directory, the replaced one (--overwrite) restored.
        if main:
            claim.give_back()
        raise
    except RunInterrupted:
        raise
    except NonFiniteLoss as exc:
        finish("failed", error=str(exc))
        raise
    except KeyboardInterrupt:
        finish("interrupted", error="interrupted before a checkpoint could be written")
        raise
    except BaseException as exc:
        if is_out_of_memory(exc):
            finish("failed", error=f"out of memory: {exc}")
            raise RunFailed(out_of_memory_advice(run, exc)) from None
        finish("failed", error=f"{type(exc).__name__}: {exc}")
        raise


class OutputClaim:
    """The run directory, claimed so that a failure caused by the user loses nothing.

    ``take`` creates the directory; with ``replace`` an existing one is first renamed aside
    (``.replaced-NAME-PID``). ``give_back`` undoes both (bad input found late); ``commit``
    drops the replaced directory once the new run has finished.
    """

    def __init__(self, path: Path, *, replace: bool) -> None:
        self.path = path
        self.replace = replace
        self.created = False
        self.set_aside: Path | None = None

    def take(self) -> None:
        if self.replace and self.path.exists():
            self.set_aside = self.path.with_name(f".replaced-{self.path.name}-{os.getpid()}")
            os.replace(self.path, self.set_aside)
        self.created = not self.path.exists()
        (self.path / "checkpoints").mkdir(parents=True, exist_ok=True)

    def give_back(self) -> None:
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
        if self.set_aside is not None:
            os.replace(self.set_aside, self.path)
            self.set_aside = None

    def commit(self) -> None:
        if self.set_aside is not None:
            shutil.rmtree(self.set_aside, ignore_errors=True)
            self.set_aside = None


def is_out_of_memory(exc: BaseException) -> bool:
    """CPU or GPU allocation failure (torch raises MemoryError, OutOfMemoryError or a
    RuntimeError from its CPU allocator)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def out_of_memory_advice(run: Any, exc: BaseException) -> str:
    """Say what was tried and what would fit instead."""
    args = run.train_args
    batch = int(args.get("per_device_train_batch_size", 1))
    length = run.config["data"]["max_length"]
    lines = [
        f"out of memory on {run.device.name} with plugin '{run.plugin}' "
        f"(batch {batch}, max_length {length}, dtype {run.dtype}, "
        f"activation checkpointing {bool(args.get('activation_checkpointing'))}).",
        "Try one of:",
    ]
    if batch > 1:
        accumulation = int(args.get("gradient_accumulation_steps", 1)) * 2
        lines.append(
            f"  --set train.per_device_train_batch_size={max(1, batch // 2)} "
            f"--set train.gradient_accumulation_steps={accumulation}  (same effective batch)"
        )
    if not args.get("activation_checkpointing"):
        lines.append("  --set train.gradient_checkpointing=true  (recompute activations)")
    lines.append(f"  --set data.max_length={max(64, length // 2)}  (shorter examples)")
    if run.plugin != "qlora":
        lines.append("  --plugin qlora  (4-bit frozen base, small adapters)")
    lines.append("`ftx plan --model M` estimates what fits before you run.")
    return "\n".join(lines)


class NonFiniteLoss(RunFailed):
    """Training produced a NaN/inf loss or gradient; the run stops and keeps its last checkpoint."""

    def __init__(self, step: int, checkpoint: Path | None, run: Any) -> None:
        lr = run.train_args.get("learning_rate")
        keep = f"last good checkpoint: {checkpoint}" if checkpoint else "no checkpoint was saved"
        super().__init__(
            f"non-finite loss or gradient at step {step}; training stopped ({keep}). "
            f"Likely causes: learning rate too high (now {lr}), fp16 overflow "
            f"(dtype {run.dtype}, bf16={run.train_args.get('bf16')}, fp16="
            f"{run.train_args.get('fp16', False)}), or bad data. Lower train.learning_rate or "
            "use bf16/fp32."
        )


def _build_trainer(run, prep, model, tokenizer, tokenized, summary):
    from datasets import Dataset

    from ftx import data as data_mod
    from ftx.callbacks import FiniteGuard, MetricsLog, StopOnSignal

    dcfg = run.config["data"]
    packing = data_mod.resolve_packing(
        dcfg["packing"],
        attn_implementation=run.attn_implementation,
        batch_size=int(run.train_args.get("per_device_train_batch_size", 1)),
        device=run.device.kind,
    )
    summary["packing"] = "padding-free" if packing else "padded"
    from ftx.attention import suits_run, use_ftx_sdpa

    requested = run.config["model"]["attn_implementation"]
    if suits_run(requested, run.attn_implementation, packing=packing, device=run.device.kind):
        summary["training_attention"] = use_ftx_sdpa(model)
    else:
        summary["training_attention"] = run.attn_implementation
    collator = data_mod.PackingCollator(tokenizer.pad_token_id, padding_free=packing)
    train_ds = Dataset.from_list(tokenized.examples)
    resume_step = int(prep.resume_from.name.split("-")[-1]) if prep.resume_from else 0
    guard, stopper = FiniteGuard(), StopOnSignal()
    callbacks = [
        MetricsLog(run.output_dir / "metrics.jsonl", run.console, resume_step=resume_step),
        guard,
        stopper,
    ]
    answered = call_all(prep.pm, "training_arguments", run=run, model=model)
    for overrides, _ in answered:
        run.train_args.update(overrides or {})
    summary["hooks"]["training_arguments"] = [who for _, who in answered]
    trainer, who = call_first(
        prep.pm,
        "build_trainer",
        run=run,
        model=model,
        tokenizer=tokenizer,
        train_dataset=train_ds,
        eval_dataset=None,
        data_collator=collator,
        callbacks=callbacks,
    )
    summary["hooks"]["build_trainer"] = who
    answered = call_all(prep.pm, "trainer_ready", run=run, model=model, trainer=trainer)
    summary["hooks"]["trainer_ready"] = [who for _, who in answered]
    guard.read_norm_from(trainer)
    summary.update(run.state.get("summary", {}))
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    # ftx prints its own progress lines (MetricsLog); the Trainer's would print every log twice.
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)
    return trainer, guard, stopper


def _score_dir(model_dir: Path, convs: list[Any], eval_cfg: dict[str, Any]) -> dict[str, Any]:
    from ftx.evaluate import score
    from ftx.inference import load_for_inference

    loaded = load_for_inference(model_dir)
    try:
        result = score(loaded.model, loaded.tokenizer, convs, **eval_cfg)
    finally:
        import torch

        torch.set_grad_enabled(True)
    return result


def _tokens_seen(trainer: Any) -> int | None:
    for row in reversed(trainer.state.log_history):
        if "num_tokens" in row:
            return int(row["num_tokens"])
    return None


def _final_loss(trainer: Any) -> float | None:
    for row in reversed(trainer.state.log_history):
        if "loss" in row:
            return round(float(row["loss"]), 6)
    return None


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts; 4-bit packed weights count as their logical size."""
    trainable = total = 0
    for param in model.parameters():
        n = param.numel()
        if getattr(param, "quant_state", None) is not None or type(param).__name__ == "Params4bit":
            n *= 2
        total += n
        if param.requires_grad:
            trainable += n
    return trainable, total


def library_versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in (
        "ftx-core",
        "torch",
        "transformers",
        "trl",
        "peft",
        "accelerate",
        "datasets",
        "bitsandbytes",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_revision() -> str | None:
    import subprocess

    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() or None


def _write_config(run: Any, prep: PreparedRun) -> None:
    from ftx.artifacts import write_text

    doc = {"plugin": run.plugin, **run.config}
    write_text(run.output_dir / "config.yaml", yaml.safe_dump(doc, sort_keys=False))


def _write_summary(out: Path, summary: dict[str, Any]) -> None:
    from ftx.artifacts import write_json

    write_json(out / "summary.json", summary)
