"""The compare directory: its spec (``compare.json``) and what each cell's run directory holds.

``compare.json`` records what the compare is — plugins, grid, seeds, ``--set``s, objective,
model, data, config file, forgetting — and its cells. Running the same compare into the same
directory again continues it (:func:`cell_state`: finished cells are skipped, an interrupted one
resumes from its checkpoint, one that failed starts again); a directory that holds another
compare, or anything but a compare, is refused before anything runs unless ``--overwrite``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftx.errors import BadInput
from ftx.runner.checkpoints import newest_checkpoint, read_json

if TYPE_CHECKING:
    from ftx.compare_grid import Cell

SPEC_FILE = "compare.json"
IDENTITY = (
    "plugins",
    "grid",
    "seeds",
    "sets",
    "objective",
    "model",
    "data",
    "config",
    "forgetting",
)
"""The keys of ``compare.json`` that make a compare what it is (two specs that differ in one of
them are two compares)."""


def compare_spec(cells: list[Cell], **identity: Any) -> dict[str, Any]:
    """``compare.json``'s content: the identity keys (:data:`IDENTITY`) and the cells."""
    missing = set(IDENTITY) - set(identity)
    if missing:
        raise TypeError(f"compare_spec: missing {sorted(missing)}")
    return {
        "ftx_compare": 1,
        **{key: _as_recorded(key, identity[key]) for key in IDENTITY},
        "cells": [
            {
                "name": c.name,
                "plugin": c.plugin,
                "group": c.group,
                "grid": c.grid_values,
                "seed": c.seed,
            }
            for c in cells
        ],
    }


def read_spec(out: Path) -> dict[str, Any] | None:
    """``OUT/compare.json``, or None when there is none (or it is not a compare's)."""
    try:
        spec = json.loads((out / SPEC_FILE).read_text())
    except (OSError, ValueError):
        return None
    return spec if isinstance(spec, dict) and "ftx_compare" in spec else None


PATH_KEYS = ("model", "data", "config")
PATH_SETS = ("data.path", "data.eval", "data.task_eval")
"""``--set`` keys whose values are files: recorded absolute, as ``PATH_KEYS`` are."""


def _absolute(value: Any) -> Any:
    """A path that exists, absolute: the same files however they were spelled, and not other
    files of the same name from another working directory. Anything else (a hub id, None, a
    path that does not exist) as given."""
    if isinstance(value, str) and value and Path(value).exists():
        return str(Path(value).resolve())
    return value


def _absolute_set(expr: str) -> str:
    key, sep, value = expr.partition("=")
    return f"{key}={_absolute(value)}" if sep and key.strip() in PATH_SETS else expr


def _as_recorded(key: str, value: Any) -> Any:
    if key in PATH_KEYS:
        return _absolute(value)
    if key == "sets" and isinstance(value, list):
        return [_absolute_set(e) if isinstance(e, str) else e for e in value]
    return value


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The identity keys on which two specs differ, as ``key (old -> new)``. A relative path
    that a spec written before paths were recorded absolute holds counts as the same file
    when it names it from the working directory of this command."""
    return [
        f"{key} ({old.get(key)!r} -> {new.get(key)!r})"
        for key in IDENTITY
        if _as_recorded(key, old.get(key)) != new.get(key)
    ]


def check_directory(out: Path, spec: dict[str, Any], *, overwrite: bool) -> str:
    """What ``out`` is for this compare: ``"new"`` (absent or empty), ``"replace"`` (anything
    is there and ``overwrite`` is set: start afresh) or ``"continue"`` (it holds this very
    compare).
    BadInput, naming the difference and the fix, when it holds something else (``out`` is a
    directory or absent: :func:`ftx.runner.rundir.check_output_path` has checked it)."""
    if not out.exists() or not any(out.iterdir()):
        return "new"
    if overwrite:
        return "replace"
    old = read_spec(out)
    if old is not None and not differences(old, spec):
        return "continue"
    if old is None:
        raise BadInput(
            f"output directory {out} is not empty and holds no ftx compare (no {SPEC_FILE})",
            hint="choose another --output, or pass --overwrite to set it aside and start afresh",
        )
    raise BadInput(
        f"output directory {out} holds another compare: it differs in "
        f"{', '.join(differences(old, spec))}",
        hint="rerun with the same options to continue that compare, choose another --output, "
        "or pass --overwrite to set it aside and start afresh",
    )


def cell_state(run_dir: Path) -> str:
    """What to do with one cell's run directory: ``"new"`` (nothing there), ``"finished"``
    (skip it), ``"resume"`` (an unfinished run with a complete checkpoint) or ``"restart"``
    (anything else there: an unfinished run without a checkpoint, a failed one)."""
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return "new"
    status = read_json(run_dir / "summary.json").get("status")
    if status == "finished":
        return "finished"
    resumable = status in ("interrupted", "running") and (run_dir / "config.yaml").is_file()
    if resumable and newest_checkpoint(run_dir / "checkpoints") is not None:
        return "resume"
    return "restart"
