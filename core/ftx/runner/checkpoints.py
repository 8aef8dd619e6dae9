"""Checkpoints under ``RUN/checkpoints``: which one is complete and newest, and what it holds."""

from __future__ import annotations

import json
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


def newest_checkpoint(folder: Path) -> Path | None:
    """The highest-step complete ``checkpoint-N``.

    The Trainer writes ``trainer_state.json`` last (after weights, optimizer, scheduler and RNG
    state), so a checkpoint whose state file is missing or unparsable was cut short and is
    never chosen.
    """
    if not folder.is_dir():
        return None
    done = [
        p
        for p in folder.glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and read_json(p / "trainer_state.json")
    ]
    return max(done, key=checkpoint_step, default=None)


def training_finished_in(checkpoint: Path) -> bool:
    """True when the checkpoint was saved at the run's last step (``global_step`` reached
    ``max_steps``): resuming from it trains nothing and goes straight to export and scoring."""
    state = read_json(checkpoint / "trainer_state.json")
    steps, last = state.get("global_step"), state.get("max_steps")
    return isinstance(steps, int) and isinstance(last, int) and last > 0 and steps >= last
