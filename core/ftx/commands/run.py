"""``ftx run``: one fine-tuning run with one method plugin, and its end-of-run summary table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ftx import ranks
from ftx.commands import stderr_console
from ftx.launch import DEFAULT_PORT

SET_HELP = (
    "Override one config value, e.g. --set train.max_steps=50 (repeatable). "
    "PLUGIN:section.key=value applies only when that plugin runs, e.g. qlora:method.r=8."
)


@click.command("run")
@click.option("--plugin", "-p", help="Method plugin: what trains (see `ftx plugins`).")
@click.option(
    "--objective",
    help="Objective: what the run learns from (default supervised; dpo, orpo, simpo, kto with "
    "ftx-preference; see `ftx plugins`).",
)
@click.option("--config", "-c", "config_file", type=click.Path(), help="YAML run config.")
@click.option("--model", "-m", help="HF model dir, .gguf file or cached hub id (default: demo).")
@click.option("--data", "-d", help="Training data file or directory (default: demo data).")
@click.option(
    "--output", "-o", type=click.Path(), help="Run directory (default: runs/<plugin>-<time>)."
)
@click.option("--set", "sets", multiple=True, metavar="[PLUGIN:]SECTION.KEY=VALUE", help=SET_HELP)
@click.option(
    "--resume", is_flag=True, help="Continue the run in --output from its last checkpoint."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --output directory.")
@click.option("--force", is_flag=True, help="With --resume: continue even if the data changed.")
@click.option(
    "--nproc",
    type=int,
    default=None,
    help="Processes to launch with torchrun on this machine (one per GPU).",
)
@click.option(
    "--base-scores",
    type=click.Path(dir_okay=False),
    hidden=True,  # ftx compare's: a file of base-model scores its runs share
    help="JSON file of base-model scores shared with other runs (ftx.runner.base_scores).",
)
@click.option("--nnodes", type=int, default=1, show_default=True, help="Machines in the run.")
@click.option(
    "--node-rank", type=int, default=0, show_default=True, help="This machine's rank (0 hosts)."
)
@click.option("--master-addr", help="Address of node rank 0 (with --nnodes > 1).")
@click.option(
    "--master-port", type=int, default=DEFAULT_PORT, show_default=True, help="Rendezvous port."
)
def run_cmd(
    plugin,
    objective,
    config_file,
    model,
    data,
    output,
    sets,
    resume,
    overwrite,
    force,
    base_scores,
    nproc,
    nnodes,
    node_rank,
    master_addr,
    master_port,
):
    """Fine-tune a model: one method (--plugin) under one objective (--objective)."""
    from ftx.launch import Nodes, check_launch
    from ftx.runner import RunRequest, execute, prepare

    nodes = Nodes(nnodes, node_rank, master_addr, master_port)
    check_launch(nproc, nodes, _NoDevice(), output=output)  # before any model or data is read
    launching = not ranks.under_launcher() and ((nproc or 1) > 1 or nodes.multi)
    if not launching:
        ranks.adopt_slurm_tasks()  # `srun ftx run` with a task per GPU: SLURM's ranks

    req = RunRequest(
        plugin=plugin,
        objective=objective,
        config_file=config_file,
        model=model,
        data=data,
        output=output,
        sets=list(sets),
        resume=resume,
        overwrite=overwrite,
        force=force,
        follower=launching and not nodes.owns_run_directory,
        base_scores=base_scores,
    )
    prep = prepare(req)  # bad input fails here, once, before any process is launched
    if not launching and not ranks.under_launcher():
        from ftx.engine import needs_launcher

        launching = needs_launcher(prep.resolved.options, prep.device)  # 1-process FSDP
    if launching:
        from ftx.launch import relaunch

        check_launch(nproc, nodes, prep.device, output=output)
        argv = sys.argv[1:]
        if not nodes.owns_run_directory:  # node rank 0 holds the run directory
            raise SystemExit(relaunch(nproc or 1, argv, output=str(output), nodes=nodes))
        with prep.run_dir.held_for_ranks() as output_dir:
            raise SystemExit(relaunch(nproc or 1, argv, output=str(output_dir), nodes=nodes))
    console = stderr_console()
    console.quiet = not ranks.is_main_process()  # under torchrun only rank 0 speaks
    summary = execute(prep, console)
    print_run_summary(summary, prep.output_dir, console)


class _NoDevice:
    """The device before it is detected: the GPU-count check waits for :func:`prepare`."""

    kind = "unknown"
    count = 0
    name = "not detected yet"


def print_run_summary(summary: dict[str, Any], out: Path, console: Any) -> None:
    """The end-of-run table: parameters, speed, memory, loss, held-out scores, where it is."""
    from rich.table import Table

    title = f"ftx run {summary.get('plugin')} × {summary.get('objective')}"
    table = Table(title=f"{title} — {summary.get('status')}")
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


COMMANDS = [run_cmd]
