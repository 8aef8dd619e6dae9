"""Checkpoints under ``RUN/checkpoints``: which one is complete and newest, and what it holds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or ``{}`` when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def checkpoint_step(path: Path) -> int:
    """``checkpoint-12`` -> 12."""
    return int(path.name.split("-")[-1])


def checkpoints_in(folder: Path) -> list[Path]:
    """Every ``checkpoint-N`` directory in ``folder``, complete or not."""
    if not folder.is_dir():
        return []
    return [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]


def is_complete(checkpoint: Path) -> bool:
    """The Trainer writes ``trainer_state.json`` last (after weights, optimizer, scheduler and
    RNG state): a checkpoint whose state file is missing or unparsable was cut short."""
    return bool(read_json(checkpoint / "trainer_state.json"))


def newest_checkpoint(folder: Path) -> Path | None:
    """The highest-step complete ``checkpoint-N``; one cut short is never chosen."""
    done = [p for p in checkpoints_in(folder) if is_complete(p)]
    return max(done, key=checkpoint_step, default=None)


def remove_incomplete_checkpoints(folder: Path) -> list[Path]:
    """Delete the checkpoints cut short (a kill, a full disk) and return them: never resumed
    from, they only take room, and a save at the same step later would write into them. Call
    only while no process of the run is saving (after a failure, or before a resume)."""
    cut_short = [p for p in checkpoints_in(folder) if not is_complete(p)]
    for path in cut_short:
        shutil.rmtree(path, ignore_errors=True)
    return cut_short


def training_finished_in(checkpoint: Path) -> bool:
    """True when the checkpoint was saved at the run's last step (``global_step`` reached
    ``max_steps``) or where early stopping ended training (its patience used up): resuming
    from it trains nothing and goes straight to export and scoring."""
    state = read_json(checkpoint / "trainer_state.json")
    steps, last = state.get("global_step"), state.get("max_steps")
    if isinstance(steps, int) and isinstance(last, int) and last > 0 and steps >= last:
        return True
    stopper = (state.get("stateful_callbacks") or {}).get("EarlyStoppingCallback") or {}
    patience = (stopper.get("args") or {}).get("early_stopping_patience")
    counter = (stopper.get("attributes") or {}).get("early_stopping_patience_counter")
    return isinstance(patience, int) and isinstance(counter, int) and counter >= patience
