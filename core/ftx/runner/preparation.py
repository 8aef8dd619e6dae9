"""Validate a run request and decide everything about the run before anything is written.

:func:`prepare` does all the checking that can fail because of the user — plugin name, config,
resume constraints, model path, dtype and attention implementation, data rows, output
directory — and has no side effects: a :class:`BadInput` from it leaves the disk as it was.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from ftx import config as cfg_mod
from ftx.catalogue import DEFAULT_OBJECTIVE
from ftx.context import ObjectiveTraits
from ftx.errors import BadInput
from ftx.plugins import (
    call_first,
    declared_options,
    discover,
    get_plugin,
    manager_for,
    merged_train_defaults,
)
from ftx.runner.checkpoints import newest_checkpoint, read_json
from ftx.runner.provenance import file_hash
from ftx.runner.request import PreparedRun, RunRequest
from ftx.runner.rundir import (
    RunDirectory,
    check_output_path,
    default_output,
    is_nonempty_dir,
)

# What ``--resume`` may change: settings that only affect logging and saving from now on.
# Anything else would be recorded in config.yaml without taking effect (the optimizer,
# scheduler and data order come from the checkpoint), so it is refused.
RESUMABLE_KEYS = frozenset(
    {
        ("train", "logging_steps"),
        ("train", "save_steps"),
        ("train", "save_total_limit"),
        ("train", "report_to"),
        ("train", "dataloader_num_workers"),
        ("data", "eval_limit"),
        ("data", "eval_max_new_tokens"),
        ("export", "gguf"),
    }
)


def prepare(req: RunRequest) -> PreparedRun:
    """Validate the request; raise BadInput on any user error. No files are written."""
    from ftx.device import choose_attention, choose_dtype, detect
    from ftx.models import check_model_spec, check_weights_format, read_model_config

    saved: dict[str, Any] = {}
    prior: dict[str, Any] = {}
    resume_from = None
    if req.resume:
        saved, resume_from, prior = _resume_source(req)
        older = saved.setdefault("train", {})
        if "select_best" not in older:  # from before evaluation during training: none
            older.update(select_best="last", eval_steps=older.get("eval_steps"))
    file_cfg = cfg_mod.load_file(req.config_file)
    req.plugin = req.plugin or file_cfg.get("plugin")
    named = (file_cfg.get("objective") or {}).get("name")
    req.objective = req.objective or named or DEFAULT_OBJECTIVE
    if not req.plugin:
        raise BadInput("--plugin is required (see `ftx plugins` for what is installed)")
    found = discover()
    plugin = get_plugin(req.plugin, found, kind="method")
    objective = get_plugin(req.objective, found, kind="objective")
    pm = manager_for(plugin, objective=objective)
    device = detect()

    # A resumed run starts from its saved, fully resolved config.yaml.
    base = {s: dict(saved.get(s) or {}) for s in cfg_mod.SECTIONS}
    for section in cfg_mod.SECTIONS:
        base[section].update(file_cfg.get(section) or {})
    flags = {"model": {"name": req.model}, "data": {"path": req.data}}
    raw = cfg_mod.merge(base, flags, req.sets, plugin=plugin.name)
    try:
        resolved, traits = resolve_config(pm, raw, plugin.name, objective.name, device)
    except BadInput as exc:
        raise _name_objective_of_key(exc, found, objective.name) from None
    if req.resume:
        _refuse_changes_on_resume(saved, resolved.config, Path(str(req.output)))
    requested = req.output if req.output is not None else default_output(plugin.name)
    check_output_path(requested)
    output = Path(requested)
    mcfg = resolved.config["model"]
    check_model_spec(mcfg["name"])
    check_weights_format(mcfg["name"], allow_pickle=mcfg["allow_pickle"])
    dtype = choose_dtype(mcfg["dtype"], device)
    model_config, _ = read_model_config(mcfg["name"])
    attn_implementation = choose_attention(mcfg["attn_implementation"], device, model_config)
    check_options_against_model(pm, model_config, resolved.config, device, dtype, traits)

    train_rows, eval_rows, files = _load_data(resolved, pm, traits)
    task_pm, task_rows = _task_eval(resolved, found, files)
    hashes = {k: file_hash(v) for k, v in files.items()}
    if req.resume:
        _refuse_changed_data(prior.get("data_hashes") or {}, hashes, output, force=req.force)
    elif is_nonempty_dir(output) and not req.overwrite and not req.follower:
        from ftx.ranks import is_main_process

        # Under torchrun the main process may already have created it: the launching
        # process validated the directory once, up front, and the ranks inherit its claim.
        if is_main_process():
            raise BadInput(
                f"output directory {output} already exists and is not empty",
                hint="choose another --output, continue it with --resume, or pass --overwrite",
            )
    replaced = prior.get("replaces")
    run_dir = RunDirectory(
        output,
        replace=req.overwrite and not req.resume,
        resume=req.resume,
        chosen_by_user=req.output is not None,
        replaced=Path(replaced) if replaced else None,
    )
    return PreparedRun(
        request=req,
        plugin=plugin,
        objective=objective,
        traits=traits,
        pm=pm,
        device=device,
        resolved=resolved,
        output_dir=output,
        train_rows=train_rows,
        eval_rows=eval_rows,
        data_files=hashes,
        dtype=dtype,
        attn_implementation=attn_implementation,
        resume_from=resume_from,
        prior_summary=prior,
        run_dir=run_dir,
        task_rows=task_rows,
        task_pm=task_pm,
    )


def _load_data(
    resolved: cfg_mod.ResolvedConfig, pm: Any, traits: ObjectiveTraits
) -> tuple[list[Any], list[Any], dict[str, str]]:
    """Read the training rows and the held-out rows (file, ratio or the demo's split, the
    demo that holds the objective's kind of rows) through the objective's ``load_rows``."""
    from ftx import data as data_mod

    dcfg = resolved.config["data"]
    train_path, eval_path = dcfg["path"], dcfg["eval"]
    if train_path is None:
        demo_train, demo_eval = data_mod.demo_paths_for(traits.data)
        train_path = str(demo_train)
        if eval_path is None and not dcfg["eval_ratio"]:
            eval_path = str(demo_eval)

    def load(path: str) -> list[Any]:
        rows, _ = call_first(
            pm, "load_rows", path=path, fmt=dcfg["format"], options=resolved.objective_options
        )
        return list(rows or [])

    rows = load(train_path)
    if eval_path is not None:
        eval_rows = load(eval_path)
    elif dcfg["eval_ratio"]:
        rows, eval_rows = data_mod.split_eval(
            rows, dcfg["eval_ratio"], resolved.train_args.get("seed", 42)
        )
    else:
        eval_rows = []
    if dcfg["eval_limit"]:
        eval_rows = eval_rows[: dcfg["eval_limit"]]
    dcfg["path"], dcfg["eval"] = train_path, eval_path
    return rows, eval_rows, {"train": train_path, **({"eval": eval_path} if eval_path else {})}


def _task_eval(
    resolved: cfg_mod.ResolvedConfig, found: list[Any], files: dict[str, str]
) -> tuple[Any, list[Any]]:
    """``data.task_eval``: held-out conversations read and later scored by the default
    objective (its first metric), beside the run's own objective — a preference-tuned run's
    task score. ``(None, [])`` when not set."""
    path = resolved.config["data"]["task_eval"]
    if path is None:
        return None, []
    task_pm = manager_for(None, objective=get_plugin(DEFAULT_OBJECTIVE, found, kind="objective"))
    rows, _ = call_first(task_pm, "load_rows", path=str(path), fmt="auto")
    limit = resolved.config["data"]["eval_limit"]
    files["task_eval"] = str(path)
    return task_pm, list(rows or [])[:limit] if limit else list(rows or [])


def _name_objective_of_key(exc: BadInput, found: list[Any], current: str) -> BadInput:
    """An unknown ``train.KEY`` that another installed objective's arguments class takes says
    which objectives take it (``train.beta`` under supervised: ``--objective dpo``)."""
    match = re.match(r"unknown key train\.(\w+)", exc.message)
    if match is None:
        return exc
    key, owners = match.group(1), []
    for info in found:
        if info.kind != "objective" or not info.ok or info.name == current:
            continue
        try:
            pm = manager_for(None, objective=info, defaults=False)
            arguments, _ = call_first(pm, "arguments_class")
        except Exception:  # a broken objective does not hide the user's error
            continue
        if arguments and key in cfg_mod.train_fields(arguments[0]):
            owners.append(info.name)
    if not owners:
        return exc
    return BadInput(
        f"{exc.message}: the {current} objective does not take it; the "
        f"{', '.join(owners)} objective{'s' if len(owners) > 1 else ''} do"
        + ("" if len(owners) > 1 else "es"),
        hint=f"did you mean --objective {owners[0]}? (or drop train.{key})",
    )


def check_options_against_model(
    pm: Any, model_config: Any, config: dict[str, Any], device: Any, dtype: str, traits: Any
) -> None:
    """The method's own judgement of its options for this model, before anything loads.

    A method's ``estimate_memory`` raises BadInput for an option value that makes no sense for
    the model (``method.layers: lats:1``, a block index past the last): asked here, with the
    config ``prepare`` has already read, such a value fails as bad input instead of in
    ``select_trainable`` after the base model has loaded. Only BadInput counts: an estimate that
    cannot be made is ``ftx plan``'s concern, not the run's."""
    train = config["train"]
    try:
        call_first(
            pm,
            "estimate_memory",
            model_config=model_config,
            seq_len=config["data"]["max_length"],
            batch_size=train.get("per_device_train_batch_size") or 1,
            options=config["method"],
            device=device,
            dtype=dtype,
            objective=traits,
            optim=train.get("optim"),
        )
    except BadInput:
        raise
    except Exception:  # the estimate's own failure is not the user's
        return


def resolve_config(
    pm: Any, raw: dict[str, Any], plugin: str, objective: str, device: Any
) -> tuple[cfg_mod.ResolvedConfig, ObjectiveTraits]:
    """Resolve the merged config ``raw`` of method ``plugin`` under ``objective`` on ``device``
    with what their hooks in ``pm`` declare (options, arguments class, train defaults, traits);
    ``(resolved config, the objective's traits)``. Raises BadInput as ``ftx.config.resolve``
    does; reads no model and writes nothing."""
    declared = declared_options(pm, "method_options")
    objective_declared = declared_options(pm, "objective_options")
    arguments, _ = call_first(pm, "arguments_class")
    train_defaults = merged_train_defaults(pm, device, objective)
    traits, _ = call_first(pm, "objective_traits", train=dict(raw.get("train") or {}))
    traits = traits or ObjectiveTraits()
    resolved = cfg_mod.resolve(
        raw,
        declared_options=list(declared or []),
        plugin=plugin,
        plugin_train_defaults=train_defaults,
        device=device,
        objective=objective,
        objective_options=list(objective_declared or []),
        arguments=arguments,
        traits=traits,
    )
    return resolved, traits


def _resume_source(req: RunRequest) -> tuple[dict[str, Any], Path, dict[str, Any]]:
    """For ``--resume``: the run's saved config, its newest complete checkpoint, its summary."""
    if not req.output:
        raise BadInput("--resume needs --output RUN_DIR (the run to continue)")
    run_dir = Path(req.output)
    saved_file = run_dir / "config.yaml"
    if not run_dir.exists():
        raise BadInput(
            f"--resume: {run_dir} does not exist",
            hint="give --output the directory of the run to continue",
        )
    if not saved_file.is_file():
        raise BadInput(f"--resume: {run_dir} is not an ftx run directory (no config.yaml)")
    saved = cfg_mod.load_yaml(saved_file.read_text())
    made_by = saved.get("plugin")
    if req.plugin and made_by and req.plugin != made_by:
        raise BadInput(
            f"--resume: run {run_dir} was made by plugin '{made_by}', not '{req.plugin}'",
            hint=f"resume it without --plugin (or with --plugin {made_by})",
        )
    req.plugin = req.plugin or made_by
    made_under = (saved.get("objective") or {}).get("name")
    if req.objective and made_under and req.objective != made_under:
        raise BadInput(
            f"--resume: run {run_dir} was made under objective '{made_under}', not "
            f"'{req.objective}'",
            hint=f"resume it without --objective (or with --objective {made_under})",
        )
    req.objective = req.objective or made_under
    summary = read_json(run_dir / "summary.json")
    if summary.get("status") == "finished":
        raise BadInput(
            f"--resume: run {run_dir} already finished; nothing to resume",
            hint="start a new run with a different --output, or pass --overwrite",
        )
    checkpoint = newest_checkpoint(run_dir / "checkpoints")
    if checkpoint is None:
        raise BadInput(
            f"--resume: run {run_dir} has no complete checkpoint to continue from",
            hint="start it again, with the same settings, with: ftx run --config "
            f"{shlex.quote(str(saved_file))} --overwrite --output {shlex.quote(str(run_dir))}",
        )
    return saved, checkpoint, summary


# Keys a newer ftx resolves that an older run's config.yaml lacks, with the value that run in
# fact trained with: resuming such a run is not a change.
ADDED_KEYS = {
    ("train", "fp16"): False,
    ("train", "activation_checkpointing_kwargs"): None,
    ("train", "early_stopping_patience"): None,
    ("train", "early_stopping_min_delta"): 0.001,
    ("train", "eval_metric_every"): None,
    ("train", "eval_metric_rows"): 32,
    ("train", "eval_loss_rows"): 256,
}


def _refuse_changes_on_resume(
    saved: dict[str, Any], resolved: dict[str, Any], run_dir: Path
) -> None:
    """A resumed run continues the saved config; changing what the checkpoint fixes is refused
    (exit 2, naming the keys) rather than recorded without effect."""
    changed = []
    for section in cfg_mod.SECTIONS:
        before, after = saved.get(section) or {}, resolved.get(section) or {}
        for key in sorted(set(before) | set(after)):
            if (section, key) in RESUMABLE_KEYS:
                continue
            if section == "data" and key in ("path", "eval") and after.get(key) is None:
                continue  # resolved to the demo later, as it was the first time
            added = (section, key) in ADDED_KEYS and key not in before
            if added and after.get(key) == ADDED_KEYS[section, key]:
                continue  # an older run's config.yaml: what it trained with, unchanged
            if before.get(key) != after.get(key):
                changed.append(f"{section}.{key} ({before.get(key)!r} -> {after.get(key)!r})")
    if changed:
        can = ", ".join(f"{s}.{k}" for s, k in sorted(RESUMABLE_KEYS))
        raise BadInput(
            f"--resume: run {run_dir} cannot change {', '.join(changed)}: the checkpoint "
            "fixes them",
            hint=f"start a new run for other settings; on resume only {can} may change",
        )


def _refuse_changed_data(
    old: dict[str, str], new: dict[str, str], run_dir: Path, *, force: bool
) -> None:
    changed = [k for k, v in new.items() if old.get(k) not in (None, v)]
    if changed and not force:
        raise BadInput(
            f"--resume: the {', '.join(changed)} data changed since run {run_dir} started",
            hint="pass --force to resume anyway, or start a new run",
        )
