"""The ``ftx`` command line: the group, its error handling, and the command modules it attaches.

Each command group lives in its own module under ``ftx.commands`` (``run``, ``compare``,
``plugins``, ``use``: generate/eval/chat/export, ``data_check``, ``plan``, ``new_plugin``, ``ui``);
each is thin: parse, call into the library, print.

Exit codes: 0 success, 2 bad input (one clear message, no traceback, nothing written),
130 interrupted (checkpoint saved, resume command printed), 1 anything else.
Importing this module imports no torch/transformers: ``ftx --help`` and ``ftx plugins`` stay fast.
"""

from __future__ import annotations

from typing import Any

import click

from ftx import __version__
from ftx.commands import stderr_console
from ftx.errors import BadInput, RunFailed, RunInterrupted


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


def _register_commands() -> None:
    """Attach one module per command group (each imports nothing heavy at load time)."""
    from ftx.commands import compare, data_check, launch, new_plugin, plan, plugins, run, ui, use

    for module in (run, compare, plugins, use, launch, ui):
        for command in module.COMMANDS:
            cli.add_command(command)
    cli.add_command(data_check.data)
    cli.add_command(plan.plan_cmd)
    cli.add_command(new_plugin.new_plugin)


_register_commands()


def main() -> None:
    """Console-script entry point: the command's process settings first (before torch or
    huggingface_hub load, :mod:`ftx.process_env`), then the command."""
    from ftx.process_env import configure_command_process

    configure_command_process()
    cli(prog_name="ftx")


if __name__ == "__main__":
    main()
