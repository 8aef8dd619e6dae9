"""The new-run form: fields from the plugins' option schemas, and validation by ``ftx run``'s own
:func:`ftx.runner.prepare`.

The fields are the selected method's ``method_options`` and the objective's
``objective_options`` (types, choices, defaults, ``auto``, help), then the common ``data`` and
``train`` settings (their types and help from :mod:`ftx.config`, their defaults the run's: the
core's, then the method's and objective's ``train_defaults``). An empty field is not set (the
default applies); a filled one becomes ``--set SECTION.KEY=VALUE``, exactly as on the command
line. Validation builds the same :class:`~ftx.runner.RunRequest` the CLI would and calls
``prepare``: it loads no model and writes nothing, and its :class:`~ftx.errors.BadInput`
message is shown beside the field it names.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftx.errors import BadInput
from ftx.options import Option

DATA_KEYS = (
    "eval",
    "eval_ratio",
    "eval_limit",
    "eval_metric",
    "eval_max_new_tokens",
    "max_length",
    "format",
    "template",
)
TRAIN_KEYS: dict[str, tuple[str, str]] = {
    "max_steps": ("int", "stop after N optimizer steps (-1: train num_train_epochs)"),
    "num_train_epochs": ("float", "passes over the training data"),
    "learning_rate": ("float", "optimizer step size"),
    "per_device_train_batch_size": ("int", "rows per step on each device"),
    "gradient_accumulation_steps": ("int", "steps accumulated per optimizer update"),
    "warmup_steps": ("float", "learning-rate warm-up: steps, or a share of the run below 1"),
    "logging_steps": ("float", "log (and plot) every N steps"),
    "save_steps": ("float", "checkpoint every N steps"),
    "seed": ("int", "random seed"),
}
SECTIONS = ("method", "objective", "data", "train")
NAMED = re.compile(r"\b(method|objective|data|train|model)\.([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Field:
    """One input of the form: ``section.key`` with its type, default, choices and help."""

    section: str
    key: str
    type: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def id(self) -> str:
        return f"field-{self.section}-{self.key}"

    @property
    def error_id(self) -> str:
        return f"error-{self.section}-{self.key}"

    @property
    def placeholder(self) -> str:
        return "null" if self.default is None else str(self.default)


def _from_option(section: str, opt: Option) -> Field:
    help_text = opt.help
    if opt.describe_range():
        help_text += f" ({opt.describe_range()})"
    choices = tuple(opt.choices) if opt.choices else None
    if opt.type == "bool" and choices is None:
        choices = (True, False)
    return Field(section, opt.name, opt.describe_type(), opt.default, help_text, choices)


def plugin_names() -> tuple[list[str], list[str]]:
    """The installed methods and objectives that load (``ftx plugins``'s ``ok`` ones)."""
    from ftx.plugins import discover

    found = [p for p in discover() if p.ok]
    return [p.name for p in found if p.kind == "method"], [
        p.name for p in found if p.kind == "objective"
    ]


@functools.lru_cache(maxsize=1)
def device() -> Any:
    """This machine's device, as ``ftx run`` detects it (imports torch; once)."""
    from ftx.device import detect

    return detect()


def fields(plugin: str, objective: str) -> list[Field]:
    """Every field of the form for method ``plugin`` under ``objective``; BadInput for a name
    that is not installed."""
    from ftx.config import CHOICES, CORE_TRAIN_DEFAULTS, DATA_FIELDS
    from ftx.plugins import (
        declared_options,
        discover,
        get_plugin,
        manager_for,
        merged_train_defaults,
    )

    found = discover()
    method = get_plugin(plugin, found, kind="method")
    goal = get_plugin(objective, found, kind="objective")
    pm = manager_for(method, objective=goal, defaults=False)
    declared = declared_options(pm, "method_options")
    objective_declared = declared_options(pm, "objective_options")
    out = [_from_option("method", o) for o in declared or []]
    out += [_from_option("objective", o) for o in objective_declared or []]
    for key in DATA_KEYS:
        kind, default, help_text = DATA_FIELDS[key]
        choices = CHOICES.get(("data", key))
        out.append(Field("data", key, kind.rstrip("?"), default, help_text, choices))
    train = {**CORE_TRAIN_DEFAULTS, **merged_train_defaults(pm, device(), objective)}
    train.setdefault("max_steps", -1)
    for key, (kind, help_text) in TRAIN_KEYS.items():
        out.append(Field("train", key, kind, train.get(key), help_text))
    return out


@dataclass
class Submission:
    """What the form posted: the pair, model, data, run name and the filled options."""

    plugin: str
    objective: str
    model: str = ""
    data: str = ""
    output: str = ""
    values: dict[str, str] | None = None

    extra: str = ""

    def sets(self) -> list[str]:
        """``section.key=value`` for every filled option, in form order, then each line of
        ``extra`` (any ``--set`` the form has no field for)."""
        filled = [f"{name}={value}" for name, value in (self.values or {}).items() if value != ""]
        return filled + [line.strip() for line in self.extra.splitlines() if line.strip()]


def read_submission(form: Any, known: list[Field], *, plugin: str, objective: str) -> Submission:
    """The posted form (a mapping) as a :class:`Submission` for the method ``plugin`` and
    ``objective`` (the pair the page resolved, defaults included); only ``known`` fields are
    read."""
    return Submission(
        plugin=plugin,
        objective=objective,
        model=str(form.get("model") or "").strip(),
        data=str(form.get("data") or "").strip(),
        output=str(form.get("output") or "").strip(),
        values={f.name: str(form.get(f.name) or "").strip() for f in known},
        extra=str(form.get("extra") or ""),
    )


def run_args(sub: Submission, output: Path) -> list[str]:
    """The ``ftx run`` arguments for ``sub`` into ``output``, as ``ftx compare`` builds them
    (:func:`ftx.comparison.run_argv`)."""
    from ftx.comparison import run_argv

    return ["run", *run_argv(request(sub, output))]


def request(sub: Submission, output: Path) -> Any:
    from ftx.catalogue import DEFAULT_OBJECTIVE
    from ftx.runner import RunRequest

    return RunRequest(
        plugin=sub.plugin,
        objective=sub.objective if sub.objective != DEFAULT_OBJECTIVE else None,
        model=sub.model or None,
        data=sub.data or None,
        output=str(output),
        sets=sub.sets(),
    )


def validate(sub: Submission, output: Path) -> None:
    """Check the run as ``ftx run`` does (:func:`ftx.runner.prepare`, which also asks the method
    to judge its options against the model's config), without loading a model or writing
    anything; BadInput on the first problem."""
    from ftx.runner import prepare

    prepare(request(sub, output))


def field_of(exc: BadInput, known: list[Field], sub: Submission) -> str:
    """The id of the error slot for ``exc``: the field its message names (``method.layers``;
    a key set in the extra ``--set`` lines -> extra; ``data.path`` or the data file -> data;
    ``model.*`` or the model path -> model; the output directory -> output), else
    ``form-error``."""
    ids = {f.name: f.error_id for f in known}
    extra = [line.split("=", 1)[0].strip() for line in sub.extra.splitlines()]
    if extra and exc.message.startswith("--set"):  # a line that is not SECTION.KEY=VALUE
        return "error-extra"
    for section, key in NAMED.findall(exc.message):
        if f"{section}.{key}" in extra:
            return "error-extra"
        if section == "data" and key == "path":
            return "error-data"
        if section == "model":
            return "error-model"
        if f"{section}.{key}" in ids:
            return ids[f"{section}.{key}"]
    text = exc.message.lower()
    if sub.data and sub.data in exc.message:
        return "error-data"
    if (sub.model and sub.model in exc.message) or text.startswith("model"):
        return "error-model"
    if "output" in text:
        return "error-output"
    return "form-error"


def message(exc: BadInput) -> str:
    """The CLI's words: the message, then its hint."""
    return exc.message + (f" — hint: {exc.hint}" if exc.hint else "")
