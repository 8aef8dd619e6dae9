"""``ftx compare``: the same data and budget through several methods, one report.

Each plugin runs in its own process (``OUT/<plugin>/``) so that peak memory is measured per
method; each keeps its own default learning rate. The report (rich table, ``compare.md``,
``compare.png`` with every loss curve) is built from the runs' ``summary.json`` and
``metrics.jsonl`` only, so it can be rebuilt from the directories at any time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ftx.artifacts import write_text
from ftx.report import plot_losses, read_metrics

COLUMNS = (
    ("plugin", "method"),
    ("status", "status"),
    ("trainable", "trainable params"),
    ("memory", "peak memory"),
    ("tokens_per_s", "tokens/s"),
    ("wall", "wall time"),
    ("loss", "final loss"),
    ("before", "held-out before"),
    ("after", "held-out after"),
)


def run_one(plugin: str, out: Path, run_args: list[str]) -> int:
    """``ftx run --plugin plugin --output out <run_args>`` in a fresh process; its exit code."""
    cmd = [sys.executable, "-m", "ftx.cli", "run", "--plugin", plugin, "--output", str(out)]
    return subprocess.call([*cmd, *run_args])


def row_for(plugin: str, run_dir: Path) -> dict[str, Any]:
    """One report row from a run directory (missing numbers become ``None``)."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        summary = {"status": "failed (no summary)"}
    trainable, total = summary.get("trainable_params"), summary.get("total_params")
    before, after = summary.get("eval_before") or {}, summary.get("eval_after") or {}
    return {
        "plugin": plugin,
        "status": summary.get("status"),
        "trainable": trainable,
        "trainable_share": trainable / total if trainable and total else None,
        "memory": summary.get("peak_memory_bytes"),
        "tokens_per_s": summary.get("tokens_per_s"),
        "wall": summary.get("wall_time_s"),
        "loss": summary.get("final_loss"),
        "metric": after.get("metric") or before.get("metric"),
        "before": before.get("score"),
        "after": after.get("score"),
    }


def _cell(key: str, row: dict[str, Any]) -> str:
    value = row.get(key)
    if value is None:
        return "–"
    if key == "trainable":
        share = row.get("trainable_share")
        return f"{value:,}" + (f" ({100 * share:.1f}%)" if share is not None else "")
    if key == "memory":
        return f"{value / 2**30:.2f} GiB"
    if key == "wall":
        return f"{value:.0f} s"
    if key in ("before", "after"):
        return f"{value:.3f}"
    if key == "loss":
        return f"{value:.4f}"
    return str(value)


def write_report(out: Path, rows: list[dict[str, Any]]) -> str:
    """Write ``compare.md`` and ``compare.png`` under ``out``; return the markdown."""
    plot_losses(
        {r["plugin"]: read_metrics(out / r["plugin"]) for r in rows},
        out / "compare.png",
        "ftx compare: training loss",
    )
    metric = next((r["metric"] for r in rows if r.get("metric")), "metric")
    header = [
        label if key not in ("before", "after") else f"{label} ({metric})" for key, label in COLUMNS
    ]
    lines = ["# ftx compare", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(key, row) for key, _ in COLUMNS) + " |")
    lines += ["", "![loss curves](compare.png)", ""]
    text = "\n".join(lines)
    write_text(out / "compare.md", text)
    return text


def print_table(rows: list[dict[str, Any]], console: Any) -> None:
    from rich.table import Table

    table = Table(title="ftx compare")
    for _, label in COLUMNS:
        table.add_column(label)
    for row in rows:
        table.add_row(*(_cell(key, row) for key, _ in COLUMNS))
    console.print(table)
