"""Synthetic run directories, for tests and benchmarks of what reads them (``ftx ui``'s run
index, reports): the files ``ftx run`` writes, with made-up numbers, in any ending, and the
broken kinds a real runs folder collects (a corrupt ``summary.json``, a copy cut short).

No model and no training: :func:`write_run` takes milliseconds.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

KINDS = (
    "finished",
    "interrupted",
    "failed",
    "running",  # summary says running; stale unless a test holds the run's lock
    "corrupt-summary",
    "no-summary",
    "half-written",
    "no-config",
    "corrupt-config",
)


def write_run(
    root: Path,
    name: str,
    kind: str = "finished",
    *,
    plugin: str = "sft",
    objective: str = "supervised",
    steps: int = 20,
    max_steps: int = 20,
    started: float | None = None,
) -> Path:
    """Write run directory ``root/name`` of ``kind`` (one of :data:`KINDS`); return it."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: one of {', '.join(KINDS)}")
    run = root / name
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    started = time.time() - 600 if started is None else started
    rows = [
        {
            "step": s,
            "loss": round(2.0 * math.exp(-s / 8) + 0.1, 4),
            "learning_rate": 1e-3,
            "max_steps": max_steps,
            "time": round(started + 0.5 * s, 3),
        }
        for s in range(1, steps + 1)
    ]
    metrics = "".join(json.dumps(r) + "\n" for r in rows)
    if kind == "half-written":
        metrics += f'{{"step": {steps + 1}, "lo'  # a line cut short
    (run / "metrics.jsonl").write_text(metrics)
    config = {
        "plugin": plugin,
        "model": {"name": None, "dtype": "auto"},
        "data": {"path": None, "max_length": 512},
        "train": {"max_steps": max_steps, "learning_rate": 1e-3},
        "method": {},
        "objective": {"name": objective},
    }
    if kind == "corrupt-config":
        (run / "config.yaml").write_text("plugin: [sft\nmodel: {name: \n")
    elif kind != "no-config":
        import yaml

        (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    status = kind if kind in ("finished", "interrupted", "failed", "running") else "finished"
    summary: dict[str, Any] = {
        "status": status,
        "plugin": plugin,
        "objective": objective,
        "model": "/cache/demo",
        "steps": steps,
        "trainable_params": 1000,
        "total_params": 10000,
        "tokens_per_s": 1234.5,
        "peak_memory_bytes": 3 * 2**30,
        "wall_time_s": 42.0,
        "final_loss": rows[-1]["loss"] if rows else None,
        "eval_before": {"metric": "exact", "score": 0.1, "n": 10},
    }
    if status == "finished":
        summary["eval_after"] = {"metric": "exact", "score": 0.9, "n": 10}
        (run / "report.md").write_text(f"# {name}\n\nA synthetic run.\n")
    if kind == "corrupt-summary":
        (run / "summary.json").write_text('{"status": "finished", "plugin": ')
    elif kind not in ("no-summary", "half-written"):
        (run / "summary.json").write_text(json.dumps(summary))
    return run
