"""Plugin options: how a method plugin declares the keys of its ``method:`` config section.

Declaring an option costs nothing at import time (no torch), so ``ftx plugins show`` and config
validation stay fast. Values arrive from YAML or ``--set method.key=value`` and are coerced to the
declared type; unknown keys get a did-you-mean. Numbers are checked against the option's
``min``/``max`` with the same :class:`Range` that checks the core's own config keys.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ftx.errors import BadInput

AUTO = "auto"
"""Default meaning "decided from the hardware at run time"."""

_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "list": list,
    "any": object,
}


@dataclass(frozen=True)
class Range:
    """The valid values of a number: ``min`` and ``max`` (inclusive unless ``min_exclusive`` /
    ``max_exclusive``; ``None`` = unbounded), plus ``also``: values accepted outside the bounds
    (``-1`` meaning "not set", as ``train.max_steps``). ``fix`` says what to do instead; it
    becomes the error's hint. NaN and infinities are never in a range.

    ``None``, booleans and non-numbers are not checked (their type is checked elsewhere).
    """

    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    also: tuple[float, ...] = ()
    fix: str | None = None

    def __post_init__(self) -> None:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"Range: min {self.min} > max {self.max}")

    @property
    def bounded(self) -> bool:
        return self.min is not None or self.max is not None

    def contains(self, value: float) -> bool:
        if value in self.also:
            return True
        if not math.isfinite(value):
            return False
        if self.min is not None and (value <= self.min if self.min_exclusive else value < self.min):
            return False
        return self.max is None or (value < self.max if self.max_exclusive else value <= self.max)

    def describe(self) -> str:
        """``"> 0"``, ``">= 1"``, ``"in [0, 1)"``, ``"-1 or >= 1"``; ``""`` when unbounded."""
        lo, hi = _number(self.min), _number(self.max)
        if self.min is not None and self.max is not None:
            left, right = "(" if self.min_exclusive else "[", ")" if self.max_exclusive else "]"
            text = f"in {left}{lo}, {hi}{right}"
        elif self.min is not None:
            text = f"{'>' if self.min_exclusive else '>='} {lo}"
        elif self.max is not None:
            text = f"{'<' if self.max_exclusive else '<='} {hi}"
        else:
            return ""
        return " or ".join([*map(_number, self.also), text])

    def check(self, value: Any, *, where: str) -> None:
        """Raise BadInput naming ``where``, the value, the range and the fix if ``value`` is a
        number outside the range."""
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        if self.contains(value):
            return
        raise BadInput(
            f"{where}: {value!r} is out of range (valid: {self.describe()})",
            hint=self.fix or f"set {where} to a value {self.describe()}",
        )


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(value)


@dataclass(frozen=True)
class Option:
    """One plugin option.

    ``type`` is one of ``str``, ``int``, ``float``, ``bool``, ``list``, ``any``. ``default`` may be
    ``"auto"`` (resolved by the plugin at run time). ``choices`` restricts the value; ``nullable``
    allows ``null``. ``alternatives`` are extra accepted types (e.g. a layer selector that is a
    string *or* a list). ``min``/``max`` bound a number (inclusive unless ``min_exclusive`` /
    ``max_exclusive``), e.g. a LoRA rank ``min=1``, a dropout ``min=0, max=1,
    max_exclusive=True``. A default outside them, outside ``choices``, or not of the type (unless
    ``None`` or ``"auto"``) is a mistake in the declaration: ValueError, which the host reports
    naming the plugin and hook (:func:`ftx.plugins.declared_options`).
    """

    name: str
    type: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    alternatives: tuple[str, ...] = field(default_factory=tuple)
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False

    def __post_init__(self) -> None:
        default = self.default
        number = isinstance(default, (int, float)) and not isinstance(default, bool)
        if number and self.range.bounded and not self.range.contains(default):
            raise ValueError(
                f"Option {self.name!r}: default {default!r} is outside its range "
                f"({self.range.describe()})"
            )
        if default is None or default == AUTO:
            return
        if self.choices is not None and default not in self.choices:
            raise ValueError(
                f"Option {self.name!r}: default {default!r} is not one of its choices "
                f"({', '.join(map(repr, self.choices))})"
            )
        if not any(_takes(default, kind) for kind in (self.type, *self.alternatives)):
            raise ValueError(
                f"Option {self.name!r}: default {default!r} is not {article(self.type)} "
                f"{self.describe_type()}"
            )

    @property
    def range(self) -> Range:
        """The option's bounds as a :class:`Range` (unbounded when neither ``min`` nor ``max``)."""
        bounds = Range(
            min=self.min,
            max=self.max,
            min_exclusive=self.min_exclusive,
            max_exclusive=self.max_exclusive,
        )
        fix = f"set method.{self.name} to a value {bounds.describe()} (default: {self.default!r})"
        return replace(bounds, fix=fix)

    def describe_type(self) -> str:
        names = [self.type, *self.alternatives]
        if self.nullable:
            names.append("null")
        return " | ".join(names)

    def describe_range(self) -> str:
        """``"> 0"``, ``">= 1"``, ``"in [0, 1)"``…; ``""`` for an option without bounds."""
        return self.range.describe()


def _takes(value: Any, type_name: str) -> bool:
    """Whether ``value`` is read as ``type_name`` (:func:`coerce` accepts it)."""
    try:
        coerce(value, type_name, where="default")
    except BadInput:
        return False
    return True


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest known name, or ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def article(word: str) -> str:
    """The indefinite article for ``word``: ``"an"`` before a vowel letter, else ``"a"``."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def coerce(value: Any, type_name: str, *, where: str) -> Any:
    """Coerce a YAML/CLI value to ``type_name``; raise BadInput naming ``where`` on failure.

    YAML reads ``1e-4`` as a string and ``8`` as an int: strings that parse as the wanted number
    are accepted, an int is accepted where a float is wanted, ``"true"/"false"`` for booleans.
    """
    if type_name == "any":
        return value
    if type_name == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "yes", "no", "1", "0"}:
            return value.lower() in {"true", "yes", "1"}
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
    elif type_name == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif type_name == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif type_name == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif type_name == "list":
        if isinstance(value, (list, tuple)):
            return list(value)
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
    raise BadInput(f"{where}: expected {type_name}, got {value!r} ({type(value).__name__})")


def resolve_options(
    declared: list[Option],
    given: dict[str, Any] | None,
    *,
    plugin: str,
    section: str = "method",
) -> dict[str, Any]:
    """Validate ``given`` against ``declared``; return every option with its resolved value.

    Unknown keys, wrong types and values outside ``choices`` or ``min``/``max`` raise BadInput
    naming ``<section>.<key>`` (``method`` for a method plugin, ``objective`` for an objective).
    ``"auto"`` is kept as the literal string for the plugin to resolve.
    """
    given = dict(given or {})
    by_name = {o.name: o for o in declared}
    for key in given:
        if key not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise BadInput(
                f"unknown option {section}.{key} for plugin '{plugin}'"
                f"{did_you_mean(key, by_name)}; its options: {known}",
                hint=f"see `ftx plugins show {plugin}`",
            )
    resolved: dict[str, Any] = {}
    for opt in declared:
        if opt.name not in given:
            resolved[opt.name] = opt.default
            continue
        resolved[opt.name] = _coerce_option(opt, given[opt.name], section)
    return resolved


def _coerce_option(opt: Option, value: Any, section: str = "method") -> Any:
    where = f"{section}.{opt.name}"
    if value is None and opt.nullable:
        return None
    if value == AUTO and opt.default == AUTO:
        return AUTO
    errors = []
    for type_name in (opt.type, *opt.alternatives):
        try:
            out = coerce(value, type_name, where=where)
        except BadInput as exc:
            errors.append(exc)
            continue
        if opt.choices is not None and out not in opt.choices:
            allowed = ", ".join(map(str, opt.choices))
            raise BadInput(f"{where}: {value!r} is not one of: {allowed}")
        opt.range.check(out, where=where)
        return out
    raise BadInput(f"{where}: expected {opt.describe_type()}, got {value!r}")
