"""Command lines for tests and benchmarks: one builder instead of a hand-written list each."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def set_args(settings: Iterable[str]) -> list[str]:
    """``["train.max_steps=4", …]`` -> ``["--set", "train.max_steps=4", …]``."""
    return [arg for setting in settings for arg in ("--set", setting)]


def run_argv(
    plugin: str,
    *,
    model: str | Path,
    data: str | Path,
    output: str | Path,
    train: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
) -> list[str]:
    """The arguments of ``ftx run`` (without the program name): ``plugin`` on ``model`` and
    ``data`` into ``output``, each ``train`` item as ``--set train.KEY=VALUE``, then ``sets``."""
    settings = [f"train.{key}={value}" for key, value in (train or {}).items()]
    return [
        "run",
        "--plugin",
        plugin,
        "--model",
        str(model),
        "--data",
        str(data),
        "--output",
        str(output),
        *set_args([*settings, *sets]),
    ]
