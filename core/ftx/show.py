"""Rich rendering for the CLI: plugin tables, plugin detail, the end-of-run summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)


def print_plugins(plugins: list[Any]) -> None:
    from rich.table import Table

    table = Table(title="ftx method plugins")
    for col in ("name", "distribution", "version", "status", "hooks"):
        table.add_column(col)
    for p in plugins:
        status = "[green]ok[/]" if p.ok else f"[red]{p.status}[/]"
        table.add_row(p.name, p.distribution, p.version, status, ", ".join(p.hooks))
    if not plugins:
        table.caption = "none installed: pip install ftx-fft ftx-sft ftx-qlora"
    _console().print(table)


def print_plugin_detail(info: Any, options: list[Any]) -> None:
    from rich.table import Table

    console = _console()
    console.print(f"[bold]{info.name}[/] — {info.distribution} {info.version} ({info.module})")
    console.print(f"hooks: {', '.join(info.hooks) or 'none'} (core defaults answer the rest)")
    table = Table(title="method options (config section `method:` / --set method.KEY=VALUE)")
    for col in ("option", "type", "default", "help"):
        table.add_column(col)
    for o in options:
        extra = f" [dim](one of: {', '.join(map(str, o.choices))})[/]" if o.choices else ""
        table.add_row(
            o.name,
            o.describe_type(),
            repr(o.default) if o.default != "auto" else "auto",
            f"{o.help}{extra}",
        )
    if not options:
        table.caption = "this plugin declares no options"
    console.print(table)


def print_run_summary(summary: dict[str, Any], out: Path, console: Any) -> None:
    from rich.table import Table

    table = Table(title=f"ftx run {summary.get('plugin')} — {summary.get('status')}")
    table.add_column("")
    table.add_column("value")
    trainable, total = summary.get("trainable_params"), summary.get("total_params")
    if trainable and total:
        table.add_row(
            "trainable params", f"{trainable:,} / {total:,} ({100 * trainable / total:.2f}%)"
        )
    for key, label in (
        ("steps", "steps"),
        ("tokens_per_s", "tokens/s"),
        ("train_time_s", "train time (s)"),
        ("wall_time_s", "wall time (s)"),
        ("final_loss", "final loss"),
    ):
        if summary.get(key) is not None:
            table.add_row(label, str(summary[key]))
    if summary.get("peak_memory_bytes"):
        table.add_row("peak memory", f"{summary['peak_memory_bytes'] / 2**30:.2f} GiB")
    for key, label in (("eval_before", "held-out before"), ("eval_after", "held-out after")):
        ev = summary.get(key)
        if ev:
            table.add_row(label, f"{ev['metric']} {ev['score']:.3f} (n={ev['n']})")
    console.print(table)
    console.print(f"run directory: {out}  (model in {out / 'model'})")
