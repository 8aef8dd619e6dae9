"""``ftx plan``: every installed method's memory estimate for one model and step, and a pick.

:func:`plan` reads the model's config (:func:`ftx.models.read_model_config`, no weights),
resolves the device and its memory budget, discovers the installed method plugins and the
objective planned for (``--objective``, supervised by default; its ``objective_traits``: two
sequences per preference pair, a reference model …), asks each method for its
``estimate_memory`` under those traits (built with :mod:`ftx.estimates`) and recommends the
method that trains the most parameters within the budget. This package is the orchestrator;
the estimate library it calls knows nothing of it or of plugin discovery. Importing it imports
no torch.

Modules: :mod:`~ftx.planner.inputs` (the flags and ``--set``: what is planned),
:mod:`~ftx.planner.budget` (the device and its memory), :mod:`~ftx.planner.recommend` (the
pick); :func:`plan` here puts them together. Errors are :class:`~ftx.errors.BadInput`
(exit 2), raised before any estimate is shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ftx.catalogue import DEFAULT_OBJECTIVE
from ftx.config import Setting, check_optimizer, check_optimizer_name
from ftx.context import ObjectiveTraits
from ftx.errors import BadInput
from ftx.estimates import MemoryEstimate, model_shape, precision_for
from ftx.models import read_model_config
from ftx.options import Option, resolve_options
from ftx.planner.budget import (
    ALLOCATOR_RESERVE,
    RUNTIME_RESERVE,
    memory_budget,
    resolve_device,
    usable_memory,
)
from ftx.planner.inputs import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_SEQ_LEN,
    STEP_SETTINGS,
    StepInputs,
    as_settings,
    options_per_plugin,
    step_inputs,
)
from ftx.planner.recommend import recommend


def _empty_row(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "distribution": info.distribution,
        "status": "ok" if info.ok else f"not loaded: {info.status}",
        "estimate": None,
        "fits": False,
        "fits_checkpointed": False,
        "peak_bytes": None,
        "peak_checkpointed_bytes": None,
    }


def plan(
    model_spec: str | None = None,
    seq_len: int | None = None,
    batch_size: int | None = None,
    gpu_mem: int | None = None,
    device: str = "auto",
    *,
    dtype: str | None = None,
    settings: Iterable[str | Setting] = (),
    method_options: dict[str, dict[str, Any]] | None = None,
    plugins: list[Any] | None = None,
    objective: str = DEFAULT_OBJECTIVE,
    optim: str | None = None,
) -> dict[str, Any]:
    """Estimate peak training memory of every installed method plugin for ``model_spec``.

    Reads only the model's config. ``seq_len``/``batch_size``: tokens per padded row and rows
    per step (``None``: ``ftx run``'s defaults, :data:`DEFAULT_SEQ_LEN` and
    :data:`DEFAULT_BATCH_SIZE`). ``gpu_mem``: the memory budget in bytes (implies a CUDA GPU);
    otherwise ``device`` (``auto``/``cpu``/``cuda``) and its memory. ``dtype``: ``model.dtype``
    (``None``: ``auto``). ``settings``: ``--set`` values, ``[PLUGIN:]section.key=value`` texts
    or :class:`~ftx.config.Setting` objects (see the module docstring); ``method_options``:
    ``{plugin: {option: value}}``, the same as scoped ``method`` settings. ``plugins``: the
    :class:`~ftx.plugins.PluginInfo` list to plan (default: every installed one; only its
    methods are planned). ``objective``: the objective planned for, an installed objective
    plugin's name; its ``objective_traits`` reach every estimate (a method whose
    ``estimate_memory`` does not take ``objective`` is estimated as under supervised, and its
    row says so). ``optim``: ``train.optim`` (``None``: each method's default for the
    device; ``--set train.optim=…`` is the same), checked as ``ftx run`` checks it.

    Returns a JSON-ready dict: the model's shape and parameter count, the device and precision,
    the budget, one row per plugin (``estimate`` in bytes, or ``None`` with ``status``
    explaining why) with ``peak_bytes`` (the default checkpointing setting) and
    ``peak_checkpointed_bytes`` (both include the export step on a CPU:
    ``peak_includes_export``), ``export_peak_bytes`` and ``export_peak_checkpointed_bytes``
    (the export step alone, 0 when it adds nothing), ``fits``/``fits_checkpointed``, the
    ``objective`` (its name and traits) and a ``recommendation`` (``method``,
    ``checkpointing``, ``reason``). Raises
    :class:`BadInput` for bad input (an unknown objective included).
    """
    from ftx.plugins import call_first, declared_options, discover, manager_for

    parsed = as_settings(settings, method_options)
    everything = discover() if plugins is None else plugins
    name, traits = objective_traits(objective, everything)
    for_objective = {
        s.key: s.value for s in parsed if s.section == "train" and s.key in traits.plan_keys
    }
    if for_objective:
        name, traits = objective_traits(objective, everything, train=for_objective)
    step = step_inputs(
        [s for s in parsed if s.section != "method" and s.key not in for_objective],
        model_spec=model_spec,
        seq_len=seq_len,
        batch_size=batch_size,
        dtype=dtype,
        optim=optim,
    )
    found = [info for info in everything if info.kind == "method"]
    rows = [_empty_row(info) for info in found]
    declared: dict[str, list[Option]] = {}
    managers: dict[str, Any] = {}
    for info, row in zip(found, rows, strict=True):
        if not info.ok:
            declared[info.name] = []
            continue
        managers[info.name] = manager_for(info, defaults=False)
        try:
            options = declared_options(managers[info.name], "method_options")
        except Exception as exc:
            row["status"] = f"method_options failed: {type(exc).__name__}: {exc}"
            options = []
        declared[info.name] = list(options or [])
    given = options_per_plugin([s for s in parsed if s.section == "method"], declared)
    config, label = read_model_config(step.model_spec)
    shape = model_shape(config)
    dev = resolve_device(device, gpu_mem)
    if step.optim:
        check_optimizer_name(step.optim)
        check_optimizer({"optim": step.optim}, dev)
    precision = precision_for(dev, step.dtype)
    checkpointing = dev.is_gpu
    budget, budget_kind = memory_budget(dev, gpu_mem)
    usable = usable_memory(budget) if budget is not None else None
    with_export = not dev.is_gpu

    for info, row in zip(found, rows, strict=True):
        if row["status"] != "ok":
            continue
        options = resolve_options(declared[info.name], given[info.name], plugin=info.name)
        try:
            estimate, _ = call_first(
                managers[info.name],
                "estimate_memory",
                model_config=config,
                seq_len=step.seq_len,
                batch_size=step.batch_size,
                options=options,
                device=dev,
                dtype=precision.weights,
                objective=traits,
                optim=step.optim,
            )
        except BadInput:
            raise
        except Exception as exc:
            row["status"] = f"estimate failed: {type(exc).__name__}: {exc}"
            continue
        if estimate is None:
            row["status"] = "unknown (the plugin gives no estimate)"
            continue
        if not isinstance(estimate, MemoryEstimate):
            row["status"] = f"estimate failed: returned {type(estimate).__name__}"
            continue
        if _changes_memory(traits) and not _takes(managers[info.name], "objective"):
            estimate.notes.append(
                f"its estimate_memory does not take the objective: planned as supervised, "
                f"without {name}'s share"
            )
        if step.optim and not _takes(managers[info.name], "optim"):
            estimate.notes.append(
                f"its estimate_memory does not take optim: planned with its own optimizer, "
                f"not {step.optim}"
            )
        peak = estimate.peak(checkpointing, with_export=with_export)
        peak_ckpt = estimate.peak(True, with_export=with_export)
        row.update(
            estimate=estimate.as_dict(),
            peak_bytes=peak,
            peak_checkpointed_bytes=peak_ckpt,
            export_peak_bytes=estimate.export_peak(checkpointing),
            export_peak_checkpointed_bytes=estimate.export_peak(True),
            fits=usable is not None and peak <= usable,
            fits_checkpointed=usable is not None and peak_ckpt <= usable,
        )
    return {
        "model": label,
        "model_type": shape.model_type,
        "params": shape.total_params(),
        "shape": shape.as_dict(),
        "seq_len": step.seq_len,
        "batch_size": step.batch_size,
        "device": {"kind": dev.kind, "name": dev.name, "bf16": dev.bf16},
        "dtype": precision.weights,
        "optim": step.optim,
        "autocast_bf16": precision.autocast,
        "objective": {"name": name, **_traits_dict(traits)},
        "checkpointing_default": checkpointing,
        "peak_includes_export": with_export,
        "budget_bytes": budget,
        "budget_kind": budget_kind,
        "usable_bytes": usable,
        "methods": rows,
        "recommendation": recommend(rows, usable, checkpointing),
    }


def objective_traits(
    name: str, plugins: list[Any], *, train: dict[str, Any] | None = None
) -> tuple[str, ObjectiveTraits]:
    """``(name, traits)`` of the objective ``name``: the installed objective plugin's
    ``objective_traits`` answer for the ``train`` settings (its ``plan_keys``; looked up in
    ``plugins``, else among every installed plugin; an objective that gives none has the
    defaults). Raises :class:`BadInput` for an unknown name or a method's
    (:func:`ftx.plugins.get_plugin`)."""
    from ftx.plugins import call_first, discover, get_plugin, manager_for

    if not any(p.name == name for p in plugins):
        plugins = discover()
    info = get_plugin(name, plugins, kind="objective")
    pm = manager_for(None, objective=info, defaults=False)
    traits, _ = call_first(pm, "objective_traits", train=dict(train or {}))
    return info.name, traits if isinstance(traits, ObjectiveTraits) else ObjectiveTraits()


def _changes_memory(traits: ObjectiveTraits) -> bool:
    """Whether the objective's traits change an estimate (more than one sequence per row, or
    a reference model)."""
    return (
        traits.sequences_per_row != 1 or traits.reference == "policy" or traits.generation_steps > 0
    )


def _takes(pm: Any, argument: str) -> bool:
    """Whether the method's ``estimate_memory`` implementations declare ``argument``."""
    return any(
        argument in (*impl.argnames, *impl.kwargnames)
        for impl in pm.hook.estimate_memory.get_hookimpls()
    )


def _traits_dict(traits: ObjectiveTraits) -> dict[str, Any]:
    return {
        "sequences_per_row": traits.sequences_per_row,
        "reference": traits.reference,
        "metrics": list(traits.metrics),
        "data": traits.data,
        "generation_steps": traits.generation_steps,
    }


__all__ = [
    "ALLOCATOR_RESERVE",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_SEQ_LEN",
    "RUNTIME_RESERVE",
    "STEP_SETTINGS",
    "StepInputs",
    "memory_budget",
    "objective_traits",
    "options_per_plugin",
    "plan",
    "recommend",
    "resolve_device",
    "step_inputs",
    "usable_memory",
]
