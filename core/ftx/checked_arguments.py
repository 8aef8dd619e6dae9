"""Training-argument classes checked harder than TRL checks them, for objectives built on TRL
trainers (preference tuning, GRPO): ``loss_type`` limited to the losses the installed trainer
implements and numbers kept within bounds, both reported while the config is validated, before
any model loads. Importing this module imports no torch; TRL is imported when a class is asked
for.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

Bounds = tuple[tuple[str, float, bool], ...]
"""``((argument, bound, exclusive), …)``: each argument must be ``>`` (exclusive) or ``>=`` the
bound."""


def load(path: str) -> Any:
    """``"module:Name"`` -> the object, without TRL's warning for ``trl.experimental`` (its
    experimental trainers are documented as such by the objectives that use them)."""
    import importlib
    import warnings

    module, name = path.split(":")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*trl.experimental.*")
        return getattr(importlib.import_module(module), name)


def loss_choices(config: type) -> tuple[str, ...] | None:
    """The ``loss_type`` values the installed TRL implements: the field's ``choices``, else the
    quoted names its help lists (``DPOConfig``: ```'sigmoid'```; ``GRPOConfig``: "Supported
    values are 'grpo', …"); None when the class has no ``loss_type``."""
    import dataclasses

    found = {f.name: f for f in dataclasses.fields(config)}.get("loss_type")
    if found is None:
        return None
    choices = found.metadata.get("choices")
    if choices:
        return tuple(choices)
    text = found.metadata.get("help", "")
    listed = re.findall(r"`'(\w+)'`", text)
    if not listed:
        supported = re.search(r"[Ss]upported values are (.*?)\.\s", text)
        listed = re.findall(r"'(\w+)'", supported.group(1)) if supported else []
    return tuple(dict.fromkeys(listed)) or None


@functools.cache
def checked_config(
    config_path: str,
    trainer_path: str,
    bounds: Bounds,
    check: Callable[[Any], None] | None = None,
) -> type:
    """A subclass of the TRL config class at ``config_path`` that also rejects, as it is built
    (config validation builds it before any model loads), a ``loss_type`` the trainer at
    ``trainer_path`` does not implement, an argument outside its ``bounds`` and whatever
    ``check(arguments)`` (a module-level function) raises ValueError for. For validation
    only: the trainer gets the plain class (this one is made at run time and would not pickle
    into checkpoints)."""
    base = load(config_path)
    choices = loss_choices(base)

    def __post_init__(self: Any) -> None:
        for key, bound, exclusive in bounds:  # first: TRL's own checks may not name the key
            value = getattr(self, key)
            if value is not None and (value < bound or (exclusive and value == bound)):
                raise ValueError(f"{key}={value!r} must be {'>' if exclusive else '>='} {bound}")
        base.__post_init__(self)
        given = (
            self.loss_type
            if isinstance(getattr(self, "loss_type", None), list)
            else [getattr(self, "loss_type", None)]
        )
        unknown = [v for v in given if choices is not None and v not in choices]
        if unknown:
            raise ValueError(
                f"loss_type {unknown[0]!r} is not a loss the installed TRL's "
                f"{trainer_path.split(':')[1]} implements; one of: {', '.join(choices or ())}"
            )
        if check is not None:
            check(self)

    return type(base.__name__, (base,), {"__post_init__": __post_init__, "__module__": __name__})
