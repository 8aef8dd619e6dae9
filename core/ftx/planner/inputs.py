"""What is planned: ``--model``/``--seq-len``/``--batch-size``/``--dtype`` and ``--set``.

``--set`` has the one syntax of ``ftx run`` and ``ftx compare``, ``[PLUGIN:]section.key=value``
(:func:`ftx.config.parse_set`):

* ``PLUGIN:method.KEY=V`` sets an option of that plugin only;
* ``method.KEY=V`` sets it for every planned plugin that declares ``KEY``, and is an error when
  none does;
* the settings of other sections that are plan inputs, :data:`STEP_SETTINGS` (the same as
  ``--model``, ``--dtype``, ``--seq-len``, ``--batch-size``; a flag and a setting that disagree
  are an error), so the ``--set``s of a run can be planned as they are; any other setting is
  an error, since nothing else changes the estimate.

Every error is a :class:`~ftx.errors.BadInput` (exit 2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ftx.config import (
    CHOICES,
    CORE_TRAIN_DEFAULTS,
    DATA_FIELDS,
    MODEL_FIELDS,
    TRAIN_ALIASES,
    Setting,
    parse_set,
    plugins_for,
)
from ftx.errors import BadInput
from ftx.estimates import DTYPE_BYTES
from ftx.options import Option, coerce

DEFAULT_SEQ_LEN: int = DATA_FIELDS["max_length"][1]
"""Tokens per padded row when neither ``--seq-len`` nor ``data.max_length`` is given: ftx run's."""
DEFAULT_BATCH_SIZE: int = CORE_TRAIN_DEFAULTS["per_device_train_batch_size"]
"""Rows per step when neither ``--batch-size`` nor the setting is given: ftx run's."""

STEP_SETTINGS: dict[tuple[str, str], tuple[str, str]] = {
    ("model", "name"): ("model_spec", "--model"),
    ("model", "dtype"): ("dtype", "--dtype"),
    ("data", "max_length"): ("seq_len", "--seq-len"),
    ("train", "per_device_train_batch_size"): ("batch_size", "--batch-size"),
    ("train", "optim"): ("optim", "--optim"),
}
"""``(section, key)`` of a run setting that is a plan input → ``(input, the flag that sets it)``.
``train``'s aliases of ``data.max_length`` (``max_seq_length`` …) count as it."""


@dataclass(frozen=True)
class StepInputs:
    """What is planned: the model spec, the step's shape, the weights dtype and the optimizer
    (``None``: each method's default for the device)."""

    model_spec: str | None
    seq_len: int
    batch_size: int
    dtype: str
    optim: str | None = None


def _spelled(setting: Setting) -> str:
    """The setting as it was typed (without its value), for messages."""
    scope = f"{setting.plugin}:" if setting.plugin else ""
    return f"{scope}{setting.section}.{setting.key}"


def step_inputs(
    settings: Iterable[Setting],
    *,
    model_spec: str | None = None,
    seq_len: int | None = None,
    batch_size: int | None = None,
    dtype: str | None = None,
    optim: str | None = None,
) -> StepInputs:
    """Combine the flags (``None``: not given) with the non-``method`` settings that are plan
    inputs (:data:`STEP_SETTINGS`); the rest default as ``ftx run`` does.

    Raises :class:`BadInput` for a setting of another key, one scoped to a plugin (a plan has
    one step for every method), a flag and a setting that disagree, a size under 1 or an
    unknown dtype.
    """
    given: dict[str, Any] = {
        "model_spec": model_spec,
        "seq_len": seq_len,
        "batch_size": batch_size,
        "dtype": dtype,
        "optim": optim,
    }
    flags = {name for name, value in given.items() if value is not None}
    source = {name: flag for name, flag in STEP_SETTINGS.values()}
    for setting in settings:
        where = (setting.section, setting.key)
        if setting.section == "train" and setting.key in TRAIN_ALIASES:
            where = TRAIN_ALIASES[setting.key]
        if where not in STEP_SETTINGS:
            reads = ", ".join(f"{s}.{k} ({flag})" for (s, k), (_, flag) in STEP_SETTINGS.items())
            raise BadInput(
                f"--set {_spelled(setting)}: ftx plan does not use this setting; besides "
                f"method options it reads {reads}",
                hint="drop it from the plan: it does not change the memory estimate",
            )
        if setting.plugin is not None:
            raise BadInput(
                f"--set {_spelled(setting)}: a plan has one step for every method, so "
                f"{where[0]}.{where[1]} cannot be scoped to one plugin",
                hint=f"drop '{setting.plugin}:'",
            )
        name, flag = STEP_SETTINGS[where]
        type_name = _setting_type(*where)
        value = setting.value
        if value is not None or not type_name.endswith("?"):
            value = coerce(value, type_name.rstrip("?"), where=f"{where[0]}.{where[1]}")
        if name in flags and value != given[name]:
            raise BadInput(
                f"{flag} {given[name]} and --set {_spelled(setting)}={value} disagree",
                hint="pass one of them",
            )
        given[name] = value
        source[name] = f"--set {_spelled(setting)}"
    inputs = StepInputs(
        model_spec=given["model_spec"],
        seq_len=DEFAULT_SEQ_LEN if given["seq_len"] is None else given["seq_len"],
        batch_size=DEFAULT_BATCH_SIZE if given["batch_size"] is None else given["batch_size"],
        dtype="auto" if given["dtype"] is None else given["dtype"],
        optim=given["optim"] or None,
    )
    for name in ("seq_len", "batch_size"):
        if getattr(inputs, name) < 1:
            raise BadInput(f"{source[name]} {getattr(inputs, name)}: must be at least 1")
    if inputs.dtype not in CHOICES[("model", "dtype")]:
        raise BadInput(
            f"{source['dtype']} {inputs.dtype!r}: expected auto, {', '.join(DTYPE_BYTES)}"
        )
    return inputs


def _setting_type(section: str, key: str) -> str:
    """The declared type of a :data:`STEP_SETTINGS` key (``ftx.config``'s; ``train``'s batch
    size and optimizer, which TrainingArguments types, are an int and a name)."""
    fields = {"model": MODEL_FIELDS, "data": DATA_FIELDS}.get(section, {})
    if key in fields:
        return fields[key][0]
    return "str" if key == "optim" else "int"


def options_per_plugin(
    settings: Iterable[Setting], declared: dict[str, list[Option]]
) -> dict[str, dict[str, Any]]:
    """``{plugin: {option: value}}`` from the ``method`` settings, for the plugins in
    ``declared`` (``{plugin: its declared options}``). A scoped setting goes to its plugin, an
    unscoped one to every plugin that declares its key; later settings win.

    Raises :class:`BadInput` for a scope naming no planned plugin and for an unscoped key that
    no planned plugin declares (with a did-you-mean); :func:`ftx.options.resolve_options`
    checks the values (and the keys of scoped settings) afterwards.
    """
    names = {name: {o.name for o in opts} for name, opts in declared.items()}
    out: dict[str, dict[str, Any]] = {name: {} for name in declared}
    for setting in settings:
        for name in plugins_for(setting, names, role="planned"):
            out[name][setting.key] = setting.value
    return out


def as_settings(
    settings: Iterable[str | Setting], method_options: dict[str, dict[str, Any]] | None
) -> list[Setting]:
    """``--set`` texts parsed (``Setting`` objects kept), then ``method_options`` as scoped
    ``method`` settings."""
    out = [s if isinstance(s, Setting) else parse_set(s) for s in settings]
    for plugin, values in (method_options or {}).items():
        out += [Setting("method", key, value, plugin) for key, value in values.items()]
    return out
