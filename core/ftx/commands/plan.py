"""``ftx plan``: which method fits, before anything is downloaded or loaded.

Reads only the model's config (``config.json`` or GGUF metadata), asks every installed method
plugin for its estimate (the ``estimate_memory`` hook) and prints a table, or JSON with every
number in bytes; the work is :func:`ftx.planner.plan`, this module parses and prints.
Importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

import json
from typing import Any

import click


class _RunDefault(click.Option):
    """An option that stays ``None`` unless given, so the planner can tell a flag from a
    ``--set`` of the same input; its help shows ``ftx run``'s default, read from
    :mod:`ftx.planner` (``run_default`` names the constant) only when help is printed."""

    def __init__(self, *args: Any, run_default: str, **kwargs: Any) -> None:
        super().__init__(*args, default=None, **kwargs)
        self.run_default = run_default

    def get_help_extra(self, ctx: click.Context) -> Any:
        from ftx import planner

        extra = super().get_help_extra(ctx)
        extra["default"] = str(getattr(planner, self.run_default))
        return extra


def _step_option(flag: str, run_default: str, help: str) -> Any:
    """``--seq-len``/``--batch-size``: a size of the planned step, at least 1."""
    return click.option(
        flag, cls=_RunDefault, run_default=run_default, type=click.IntRange(min=1), help=help
    )


@click.command("plan")
@click.option(
    "--model", "-m", default=None, help="HF model dir, .gguf file or cached hub id (default: demo)."
)
@_step_option("--seq-len", "DEFAULT_SEQ_LEN", "Tokens per (padded) row, i.e. data.max_length.")
@_step_option(
    "--batch-size", "DEFAULT_BATCH_SIZE", "Rows per step (train.per_device_train_batch_size)."
)
@click.option(
    "--gpu-mem",
    default=None,
    metavar="SIZE",
    help="Plan for a CUDA GPU with this much memory, e.g. 16GB, 24GiB, 80G.",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto (this machine and its free memory) | cpu | cuda.",
)
@click.option(
    "--dtype",
    default=None,
    help="Weights dtype (model.dtype): auto (the default) | float32 | bfloat16 | float16.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="[PLUGIN:]method.KEY=VALUE",
    help="A method option, as in ftx run: qlora:method.r=8 for one plugin, method.r=8 for "
    "every plugin that declares r (an error if none does). data.max_length, "
    "train.per_device_train_batch_size, train.optim, model.dtype and model.name are read as "
    "--seq-len, --batch-size, --optim, --dtype and --model; other settings are an error, "
    "since they do not change the estimate. Repeatable.",
)
@click.option(
    "--objective",
    default="supervised",
    show_default=True,
    help="Plan for this objective (an installed one: dpo needs two sequences per pair and a "
    "reference model, which the estimates include).",
)
@click.option(
    "--optim",
    default=None,
    help="The optimizer (train.optim), e.g. adamw_8bit: its state is part of the estimate "
    "(default: each method's own, AdamW; paged 32-bit AdamW for qlora on CUDA).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (numbers in bytes).")
def plan_cmd(
    model: str | None,
    seq_len: int | None,
    batch_size: int | None,
    gpu_mem: str | None,
    device: str,
    dtype: str | None,
    sets: tuple[str, ...],
    objective: str,
    optim: str | None,
    as_json: bool,
) -> None:
    """Estimate peak training memory per method and recommend one (no weights are loaded).

    \b
    Examples:
      ftx plan                                 # the demo model on this machine
      ftx plan --model ./llama-7b --gpu-mem 24GB --seq-len 1024 --batch-size 4
      ftx plan --model m.gguf --set sft:method.layers=last:2 --json
      ftx plan --set method.r=8                # every plugin with an option r
      ftx plan --objective dpo                 # preference pairs: two sequences, a reference
      ftx plan --gpu-mem 24GB --optim adamw_8bit   # 8-bit optimizer state
    """
    from ftx.estimates import parse_size
    from ftx.planner import plan

    budget = parse_size(gpu_mem) if gpu_mem is not None else None
    result = plan(
        model,
        seq_len=seq_len,
        batch_size=batch_size,
        gpu_mem=budget,
        device=device,
        dtype=dtype,
        settings=sets,
        objective=objective,
        optim=optim,
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    print_plan(result)


def _short(n: int | None) -> str:
    """Compact binary size for table cells: ``10.1G``, ``716M``, ``3M``, ``-`` for zero."""
    if not n:
        return "-"
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f}G"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.0f}M"
    return f"{n / 1024:.0f}K"


def print_plan(result: dict[str, Any]) -> None:
    """Render a :func:`ftx.planner.plan` result as a rich table on stdout (sizes in GiB/MiB)."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ftx.estimates import format_bytes, format_count

    console = Console()
    shape = result["shape"]
    ckpt_default = result["checkpointing_default"]
    precision = result["dtype"] + (" + bf16 autocast" if result["autocast_bf16"] else "")
    console.print(
        f"[bold]model[/] {escape(result['model'])}: {result['model_type']}, "
        f"{format_count(result['params'])} parameters, {shape['layers']} blocks, hidden "
        f"{shape['hidden']}, vocabulary {shape['vocab']}",
        highlight=False,
    )
    console.print(
        f"[bold]step[/] batch {result['batch_size']} × {result['seq_len']} tokens on "
        f"{escape(result['device']['name'])}, {precision}, activation checkpointing "
        f"{'on' if ckpt_default else 'off'} by default",
        highlight=False,
    )
    objective = result["objective"]
    if objective["sequences_per_row"] != 1 or objective["reference"] != "none":
        reference = "a reference model" if objective["reference"] == "policy" else "no reference"
        console.print(
            f"[bold]objective[/] {escape(objective['name'])}: {objective['sequences_per_row']} "
            f"sequences per row, {reference}",
            highlight=False,
        )
    console.print(
        f"[bold]memory[/] {format_bytes(result['budget_bytes'])} {result['budget_kind']}, "
        f"{format_bytes(result['usable_bytes'])} usable",
        highlight=False,
    )
    table = Table(
        title="peak training memory per method (G = GiB, M = MiB)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
    )
    with_reference = any((row["estimate"] or {}).get("reference") for row in result["methods"])
    headers = ("method", "trains", "weight", "grads", "optim", "activ", "quant", "peak")
    for col in headers:
        table.add_column(col, justify="left" if col == "method" else "right")
    table.add_column("ckpt", justify="right")
    table.add_column("fits")
    notes: list[str] = []
    for row in result["methods"]:
        est = row["estimate"]
        if est is None:
            table.add_row(row["name"], *["?"] * 8, "[yellow]?[/]")
            notes.append(f"{row['name']}: {row['status']}")
            continue
        if row["fits"]:
            fits = "[green]yes[/]"
        elif row["fits_checkpointed"]:
            fits = "[yellow]ckpt[/]"
        else:
            fits = "[red]no[/]"
        table.add_row(
            row["name"],
            format_count(est["trainable_params"]),
            _short(est["weights"] + est.get("reference", 0)),
            _short(est["gradients"]),
            _short(est["optimizer"]),
            _short(est["activations_checkpointed" if ckpt_default else "activations"]),
            _short(est["quantization_overhead"]),
            f"[bold]{_short(row['peak_bytes'])}[/]",
            _short(row["peak_checkpointed_bytes"]),
            fits,
        )
        notes.extend(f"{row['name']}: {note}" for note in est["notes"])
    table.caption = "peak: the default setting; ckpt: with activation checkpointing" + (
        "" if result["device"]["kind"] == "cuda" else "; both include the export step"
    )
    if with_reference:
        table.caption += "; weight includes the objective's frozen reference copy"
    console.print(table)
    exports = [
        f"{row['name']} {_short(row['export_peak_bytes'])} "
        f"({_short(row['export_peak_checkpointed_bytes'])} ckpt)"
        for row in result["methods"]
        if row.get("export_peak_bytes")
    ]
    if exports:
        console.print(
            f"[bold]export[/] peak while merging into model/ after training: {', '.join(exports)}"
            " (LoRA merged tensor by tensor)",
            highlight=False,
        )
    for note in notes:
        console.print(f"  [dim]{escape(note)}[/]", highlight=False)
    rec = result["recommendation"]
    if rec["method"]:
        flag = " with checkpointing" if rec["checkpointing"] and not ckpt_default else ""
        console.print(
            f"[bold green]recommended:[/] [bold]{rec['method']}[/]{flag} — {escape(rec['reason'])}",
            highlight=False,
        )
    else:
        console.print(f"[yellow]no recommendation:[/] {escape(rec['reason'])}")


COMMANDS = [plan_cmd]
