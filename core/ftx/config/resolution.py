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
    check_precision,
    check_ranges,
    check_trackers,
    check_training_arguments,
)
from ftx.config.tables import (
    CHOICES,
    CORE_TRAIN_DEFAULTS,
    DATA_FIELDS,
    MODEL_FIELDS,
    SECTIONS,
    TRAIN_ALIASES,
    TRAIN_OWNED,
)
from ftx.errors import BadInput
from ftx.model_files import check_tokenizer_files
from ftx.options import AUTO, Option, coerce, did_you_mean, resolve_options


@dataclasses.dataclass
class ResolvedConfig:
    """The outcome of resolution: the config to write to ``config.yaml``, plus derived parts."""

    config: dict[str, Any]
    options: dict[str, Any]
    train_args: dict[str, Any]


def _check_fixed(section: str, table: dict[str, tuple[str, Any, str]], given: dict) -> dict:
    out: dict[str, Any] = {}
    for key, value in given.items():
        if key not in table:
            raise BadInput(
                f"unknown key {section}.{key}{did_you_mean(key, table)}; "
                f"known: {', '.join(sorted(table))}"
            )
        type_name, _, _ = table[key]
        where = f"{section}.{key}"
        if type_name.endswith("?"):
            out[key] = None if value is None else coerce(value, type_name[:-1], where=where)
        else:
            out[key] = coerce(value, type_name, where=where)
        choices = CHOICES.get((section, key))
        if choices is not None:
            if isinstance(out[key], bool):
                out[key] = str(out[key]).lower()
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


@functools.lru_cache(maxsize=1)
def train_fields() -> dict[str, Any]:
    """Field name -> type hint of the installed TRL ``SFTConfig`` (imports trl: not cheap)."""
    from trl import SFTConfig

    hints = typing.get_type_hints(SFTConfig)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(SFTConfig) if f.init}


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
) -> ResolvedConfig:
    """Validate and resolve a merged config for ``plugin`` on ``device`` (a DeviceInfo).

    Raises BadInput for anything the trainer would reject or silently misread (see the module
    docstring); reads no model and writes nothing.
    """
    cfg = copy.deepcopy({s: dict(raw.get(s) or {}) for s in SECTIONS})
    _apply_aliases(cfg)
    model = _check_fixed("model", MODEL_FIELDS, cfg["model"])
    data = _check_fixed("data", DATA_FIELDS, cfg["data"])
    options = resolve_options(declared_options, cfg["method"], plugin=plugin)

    fields = train_fields()
    for key in cfg["train"]:
        if key in TRAIN_OWNED:
            raise BadInput(f"train.{key} is managed by ftx: {TRAIN_OWNED[key]}")
        if key not in fields:
            raise BadInput(
                f"unknown key train.{key}{did_you_mean(key, [*fields, *TRAIN_ALIASES])}",
                hint="train takes TrainingArguments/SFTConfig fields of the installed TRL",
            )
    train = {**CORE_TRAIN_DEFAULTS, **(plugin_train_defaults or {}), **cfg["train"]}
    auto = {k for k in ("bf16", "activation_checkpointing") if train.get(k) == AUTO}
    train = {
        k: v if k in auto else coerce_train_value(k, v, fields.get(k, Any))
        for k, v in train.items()
    }
    if "bf16" in auto:  # an explicit train.fp16=true wins over the automatic bf16
        train["bf16"] = bool(device.bf16) and not train.get("fp16")
    if "activation_checkpointing" in auto:
        train["activation_checkpointing"] = bool(device.is_gpu)
    config = {"model": model, "data": data, "train": train, "method": options}
    check_ranges(config)
    check_precision(train, device)
    check_trackers(train.get("report_to"))
    check_data_paths(data)
    check_tokenizer_files(model["name"])
    resolved = ResolvedConfig(config=config, options=options, train_args=dict(train))
    check_training_arguments(resolved, device)
    return resolved
