"""``ftx compare``: the same data and budget through several method plugins, one report."""

from __future__ import annotations

import click

from ftx.commands import stderr_console
from ftx.errors import BadInput


@click.command("compare")
@click.option("--plugins", "plugin_list", required=True, help="Comma list, e.g. fft,sft,qlora.")
@click.option("--config", "-c", "config_file", type=click.Path(), help="YAML run config.")
@click.option("--model", "-m", help="Model (default: demo).")
@click.option("--data", "-d", help="Training data (default: demo data).")
@click.option("--output", "-o", type=click.Path(), help="Directory (default runs/compare-<time>).")
@click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE", help="As for run.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --output directory.")
def compare_cmd(plugin_list, config_file, model, data, output, sets, overwrite):
    """Run the same data and budget through several methods and compare them."""
    from datetime import datetime
    from pathlib import Path

    from ftx import comparison
    from ftx.runner import RunRequest, prepare

    names = [p.strip() for p in plugin_list.split(",") if p.strip()]
    if len(names) != len(set(names)) or not names:
        raise BadInput(f"--plugins {plugin_list!r}: give distinct plugin names, e.g. fft,sft,qlora")
    out = Path(output or f"runs/compare-{datetime.now():%Y%m%d-%H%M%S}")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise BadInput(f"output directory {out} already exists", hint="pass --overwrite")
    run_args = [
        *(["--config", config_file] if config_file else []),
        *(["--model", model] if model else []),
        *(["--data", data] if data else []),
        *[x for s in sets for x in ("--set", s)],
        *(["--overwrite"] if overwrite else []),
    ]
    for name in names:  # every plugin and the shared options are checked before anything runs
        prepare(
            RunRequest(
                plugin=name,
                config_file=config_file,
                model=model,
                data=data,
                output=str(out / name),
                sets=list(sets),
                overwrite=overwrite,
            )
        )
    console = stderr_console()
    codes = {}
    for name in names:
        console.rule(f"ftx compare: {name}")
        codes[name] = comparison.run_one(name, out / name, run_args)
    rows = [comparison.row_for(name, out / name) for name in names]
    comparison.write_report(out, rows)
    comparison.print_table(rows, console)
    console.print(f"report: {out / 'compare.md'}  plot: {out / 'compare.png'}")
    if any(codes.values()):
        raise SystemExit(1)


COMMANDS = [compare_cmd]
