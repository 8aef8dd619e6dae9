"""The ``ftx`` command line. Thin: parse, call into the library, print.

Exit codes: 0 success, 2 bad input (one clear message, no traceback, nothing written),
130 interrupted (checkpoint saved, resume command printed), 1 anything else.
Importing this module imports no torch/transformers: ``ftx --help`` and ``ftx plugins`` stay fast.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ftx import __version__, ranks
from ftx.errors import BadInput, RunFailed, RunInterrupted


def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def fail(message: str, hint: str | None = None, code: int = 2) -> None:
    """Print ``error: message`` (and a hint) to stderr and exit with ``code``."""
    from rich.markup import escape

    console = stderr_console()
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if hint:
        console.print(f"  [dim]hint:[/] {escape(hint)}", highlight=False, soft_wrap=True)
    raise SystemExit(code)


class FtxGroup(click.Group):
    """Turns BadInput into exit 2 and interruptions into exit 130, without tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BadInput as exc:
            fail(exc.message, exc.hint)
        except RunFailed as exc:
            fail(str(exc), code=1)
        except RunInterrupted:
            raise SystemExit(130) from None
        except KeyboardInterrupt:
            stderr_console().print("[yellow]interrupted[/]")
            raise SystemExit(130) from None


@click.group(cls=FtxGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ftx")
def cli() -> None:
    """Fine-tune language models with interchangeable method plugins (fft, sft, qlora, …).

    \b
    Quick start (the built-in demo: SmolLM2-135M on a held-out task):
      ftx run --plugin qlora
    """


@cli.command("run")
@click.option("--plugin", "-p", help="Method plugin to use (see `ftx plugins`).")
@click.option("--config", "-c", "config_file", type=click.Path(), help="YAML run config.")
@click.option("--model", "-m", help="HF model dir, .gguf file or cached hub id (default: demo).")
@click.option("--data", "-d", help="Training data file or directory (default: demo data).")
@click.option(
    "--output", "-o", type=click.Path(), help="Run directory (default: runs/<plugin>-<time>)."
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override one config value, e.g. --set train.max_steps=50 (repeatable).",
)
@click.option(
    "--resume", is_flag=True, help="Continue the run in --output from its last checkpoint."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --output directory.")
@click.option("--force", is_flag=True, help="With --resume: continue even if the data changed.")
@click.option(
    "--nproc", type=int, default=None, help="Processes to launch with torchrun (multi-GPU)."
)
def run_cmd(plugin, config_file, model, data, output, sets, resume, overwrite, force, nproc):
    """Fine-tune a model with one method plugin."""
    from ftx.runner import RunRequest, execute, prepare

    req = RunRequest(
        plugin=plugin,
        config_file=config_file,
        model=model,
        data=data,
        output=output,
        sets=list(sets),
        resume=resume,
        overwrite=overwrite,
        force=force,
    )
    prep = prepare(req)  # bad input fails here, once, before any process is launched
    if nproc is not None and nproc > 1 and not ranks.under_launcher():
        from ftx.launch import relaunch

        raise SystemExit(relaunch(nproc, sys.argv[1:], output=str(prep.output_dir)))
    console = stderr_console()
    console.quiet = not ranks.is_main_process()  # under torchrun only rank 0 speaks
    summary = execute(prep, console)
    from ftx.show import print_run_summary

    print_run_summary(summary, prep.output_dir, console)


@cli.command("compare")
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

    from ftx.compare import print_table, row_for, run_one, write_report
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
        codes[name] = run_one(name, out / name, run_args)
    rows = [row_for(name, out / name) for name in names]
    write_report(out, rows)
    print_table(rows, console)
    console.print(f"report: {out / 'compare.md'}  plot: {out / 'compare.png'}")
    if any(codes.values()):
        raise SystemExit(1)


@cli.group("plugins", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.pass_context
def plugins_cmd(ctx: click.Context, as_json: bool) -> None:
    """List installed method plugins and whether they load."""
    if ctx.invoked_subcommand is not None:
        return
    from ftx.plugins import discover

    found = discover()
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in found], indent=2))
        return
    from ftx.show import print_plugins

    print_plugins(found)


@plugins_cmd.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_show_cmd(name: str, as_json: bool) -> None:
    """Show a plugin's hooks and options."""
    from ftx.plugins import call_first, get_plugin, manager_for
    from ftx.show import print_plugin_detail

    info = get_plugin(name)
    options, _ = call_first(manager_for(info, defaults=False), "method_options")
    if as_json:
        click.echo(
            json.dumps(
                {
                    **info.as_dict(),
                    "options": [
                        {
                            "name": o.name,
                            "type": o.describe_type(),
                            "default": o.default,
                            "help": o.help,
                            "choices": list(o.choices) if o.choices else None,
                        }
                        for o in options or []
                    ],
                },
                indent=2,
                default=str,
            )
        )
        return
    print_plugin_detail(info, options or [])


def _register_optional_commands() -> None:
    """Attach command modules (each imports nothing heavy at load time)."""
    from ftx.commands import data_check, new_plugin, plan, use

    cli.add_command(data_check.data)
    cli.add_command(new_plugin.new_plugin)
    for command in use.COMMANDS:
        cli.add_command(command)
    cli.add_command(plan.plan_cmd)


_register_optional_commands()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="ftx")


if __name__ == "__main__":
    main()
