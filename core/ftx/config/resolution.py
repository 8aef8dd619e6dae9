"""Resolve a merged config: known keys, coerced types, aliases, defaults, then every check."""

from __future__ import annotations

import copy
import dataclasses
import functools
import types
import typing
from typing import Any

from ftx.config.checks import (
    check_data_paths,
    check_optimizer,
    check_precision,
    check_ranges,
    check_trackers,
    check_training_arguments,
)
from ftx.config.evaluation import Evaluation, resolve_evaluation
from ftx.config.tables import (
    CHOICES,
    CORE_TRAIN_DEFAULTS,
    DATA_FIELDS,
    EXPORT_FIELDS,
    MODEL_FIELDS,
    SECTIONS,
    TRAIN_ALIASES,
    TRAIN_FIELDS,
    TRAIN_OWNED,
)
from ftx.errors import BadInput
from ftx.model_files import check_tokenizer_files
from ftx.options import AUTO, Option, coerce, did_you_mean, resolve_options
from ftx.precision import autocast_flags, checkpointing_kwargs, master_dtype


@dataclasses.dataclass
class ResolvedConfig:
    """The outcome of resolution: the config to write to ``config.yaml``, plus derived parts."""

    config: dict[str, Any]
    options: dict[str, Any]
    train_args: dict[str, Any]
    objective_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    evaluation: Evaluation | None = None


def _check_fixed(section: str, table: dict[str, tuple[str, Any, str]], given: dict) -> dict:
    out: dict[str, Any] = {}
    for key, value in given.items():
        if key not in table:
            raise BadInput(
                f"unknown key {section}.{key}{did_you_mean(key, table)}; "
                f"known: {', '.join(sorted(table))}"
            )
        type_name, default, _ = table[key]
        where = f"{section}.{key}"
        if value == AUTO and default == AUTO:  # a number key whose default is auto
            out[key] = AUTO
        elif type_name.endswith("?"):
            out[key] = None if value is None else coerce(value, type_name[:-1], where=where)
        elif default == AUTO and type_name != "str":
            try:
                out[key] = coerce(value, type_name, where=where)
            except BadInput:
                raise BadInput(
                    f"{where}: expected auto or a number ({type_name}), got {value!r}",
                    hint=f"--set {where}=auto",
                ) from None
        else:
            out[key] = coerce(value, type_name, where=where)
        choices = CHOICES.get((section, key))
        if choices is not None and out[key] is not None:
            if isinstance(out[key], (bool, str)) and str(out[key]).lower() in choices:
                out[key] = str(out[key]).lower()  # YAML's true/false; Q8_0 as llama.cpp writes it
            if out[key] not in choices:
                raise BadInput(f"{where}: {value!r} is not one of: {', '.join(choices)}")
    return {**{k: v[1] for k, v in table.items()}, **out}


def _apply_aliases(cfg: dict[str, Any]) -> None:
    train = cfg["train"]
    for old in [k for k in train if k in TRAIN_ALIASES]:
        section, new = TRAIN_ALIASES[old]
        value = train.pop(old)
        if section == "train" and new in train:
            raise BadInput(
                f"train.{old} and train.{new} both given: {old} is the old name of {new}"
            )
        cfg[section].setdefault(new, value)
    layer_cls = train.pop("fsdp_transformer_layer_cls_to_wrap", None)
    if layer_cls is not None:
        fsdp_config = dict(train.get("fsdp_config") or {})
        fsdp_config.setdefault("transformer_layer_cls_to_wrap", layer_cls)
        train["fsdp_config"] = fsdp_config


@functools.lru_cache(maxsize=8)
def train_fields(cls: type | None = None) -> dict[str, Any]:
    """Field name -> type hint of an arguments class (the objective's: ``SFTConfig``,
    ``DPOConfig`` …; by default ``transformers.TrainingArguments``). Imports it: not cheap."""
    if cls is None:
        from transformers import TrainingArguments

        cls = TrainingArguments
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def _hint_types(hint: Any) -> list[str]:
    is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = typing.get_args(hint) if is_union else (hint,)
    names = {bool: "bool", int: "int", float: "float", str: "str"}
    found = [names[a] for a in args if a in names]
    return found if len(found) == len([a for a in args if a is not type(None)]) else []


def coerce_train_value(key: str, value: Any, hint: Any) -> Any:
    """Coerce a ``train.<key>`` value to the SFTConfig field's type; complex types pass through."""
    if value is None:
        return None
    kinds = _hint_types(hint)
    if not kinds:
        return value
    errors = []
    for kind in sorted(kinds, key=["bool", "int", "float", "str"].index):
        try:
            return coerce(value, kind, where=f"train.{key}")
        except BadInput as exc:
            errors.append(exc)
    raise BadInput(f"train.{key}: expected {' or '.join(kinds)}, got {value!r}")


def resolve(
    raw: dict[str, Any],
    *,
    declared_options: list[Option],
    plugin: str,
    plugin_train_defaults: dict[str, Any] | None,
    device: Any,
    objective: str | None = None,
    objective_options: list[Option] | None = None,
    arguments: tuple[type, dict[str, Any]] | None = None,
    traits: Any = None,
) -> ResolvedConfig:
    """Validate and resolve a merged config for method ``plugin`` under ``objective`` on
    ``device`` (a DeviceInfo).

    ``declared_options``/``objective_options``: the method's and the objective's option
    schemas (sections ``method`` and ``objective``); ``plugin_train_defaults``: the merged
    ``train_defaults`` answers; ``arguments``: the objective's ``(arguments class, fixed
    keywords)``, against which ``train`` is checked (default: plain ``TrainingArguments``);
    ``traits``: the objective's :class:`ftx.context.ObjectiveTraits` (its metrics and smallest
    batch). Raises BadInput for anything the trainer would reject or silently misread (see the
    module docstring); reads no model and writes nothing.
    """
    cfg = copy.deepcopy({s: dict(raw.get(s) or {}) for s in SECTIONS})
    _apply_aliases(cfg)
    model = _check_fixed("model", MODEL_FIELDS, cfg["model"])
    data = _check_fixed("data", DATA_FIELDS, cfg["data"])
    export = _check_fixed("export", EXPORT_FIELDS, cfg["export"])
    options = resolve_options(declared_options, cfg["method"], plugin=plugin)
    given = dict(cfg["objective"])
    named = given.pop("name", None)
    if named is not None and objective is not None and named != objective:
        raise BadInput(
            f"objective.name: {named!r}, but the run's objective is {objective!r}",
            hint=f"use --objective {named}, or drop objective.name",
        )
    chosen = resolve_options(
        list(objective_options or []),
        given,
        plugin=objective or "the objective",
        section="objective",
    )
    _check_metric(data, traits, objective)

    cls, fixed = arguments if arguments is not None else (None, {})
    fields = train_fields(cls)
    owned = {**TRAIN_OWNED, **{k: f"the {objective} objective sets it" for k in fixed}}
    for key in cfg["train"]:
        if key in owned:
            raise BadInput(f"train.{key} is managed by ftx: {owned[key]}")
        if key not in fields and key not in TRAIN_FIELDS:
            raise BadInput(
                f"unknown key train.{key}"
                f"{did_you_mean(key, [*fields, *TRAIN_ALIASES, *TRAIN_FIELDS])}",
                hint=f"train takes the fields of {getattr(cls, '__name__', 'TrainingArguments')}"
                + (f", the {objective} objective's arguments class" if objective else ""),
            )
    defaults = {k: v for k, v in CORE_TRAIN_DEFAULTS.items() if k in fields}
    train = {**defaults, **(plugin_train_defaults or {}), **cfg["train"]}
    evaluation, evaluation_args = resolve_evaluation(train, cfg["train"], data, traits)
    auto = {k for k in ("bf16", "fp16", "activation_checkpointing") if train.get(k) == AUTO}
    train = {
        k: v if k in auto or k in TRAIN_FIELDS else coerce_train_value(k, v, fields.get(k, Any))
        for k, v in train.items()
    }
    weights = master_dtype(model["dtype"], device)
    if {"bf16", "fp16"} & auto:  # an explicit value wins over the automatic one
        bf16, fp16 = autocast_flags(device, weights, train.get("bf16"), train.get("fp16"))
        train.update({k: v for k, v in (("bf16", bf16), ("fp16", fp16)) if k in auto})
    if "activation_checkpointing" in auto:
        train["activation_checkpointing"] = bool(device.is_gpu)
    kwargs = checkpointing_kwargs(train)
    if kwargs is not None and "activation_checkpointing_kwargs" in fields:
        train["activation_checkpointing_kwargs"] = kwargs
    objective_section = {"name": objective, **chosen} if objective else dict(chosen)
    config = {
        "model": model,
        "data": data,
        "train": train,
        "method": options,
        "objective": objective_section,
        "export": export,
    }
    check_ranges(config)
    _check_batch(train, traits, objective)
    check_precision(train, device)
    check_optimizer(train, device)
    check_trackers(train.get("report_to"))
    check_data_paths(data)
    check_tokenizer_files(model["name"])
    if export["gguf"] is not None:
        from ftx.gguf_export import check_model_for_gguf

        check_model_for_gguf(model["name"])
    train_args = {k: v for k, v in train.items() if k not in TRAIN_FIELDS}
    resolved = ResolvedConfig(
        config=config,
        options=options,
        train_args={**train_args, **evaluation_args},
        objective_options=chosen,
        evaluation=evaluation,
    )
    check_training_arguments(resolved, device, arguments)
    return resolved


def _check_metric(data: dict[str, Any], traits: Any, objective: str | None) -> None:
    """``data.eval_metric``: ``auto`` becomes the objective's first metric; an explicit one must
    be among the objective's."""
    metrics = tuple(getattr(traits, "metrics", None) or ("exact", "json", "loss"))
    if data["eval_metric"] == AUTO:
        data["eval_metric"] = metrics[0]
    elif data["eval_metric"] not in metrics:
        who = f"the {objective} objective" if objective else "this run"
        raise BadInput(
            f"data.eval_metric: {data['eval_metric']!r} is not one of: {', '.join(metrics)} "
            f"({who} scores with these)",
            hint="set data.eval_metric=auto",
        )


def _check_batch(train: dict[str, Any], traits: Any, objective: str | None) -> None:
    smallest = int(getattr(traits, "min_batch_size", 1) or 1)
    batch = train.get("per_device_train_batch_size", 1)
    if isinstance(batch, int) and batch < smallest:
        raise BadInput(
            f"train.per_device_train_batch_size: {batch} is too small for the {objective} "
            f"objective (it needs at least {smallest} rows per batch)",
            hint=f"--set train.per_device_train_batch_size={smallest}",
        )
