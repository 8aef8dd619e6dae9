"""``ftx ui``: serve the local web app (:mod:`ftx.ui`) for one runs root.

Needs the ``ui`` extra (Starlette, uvicorn, Jinja2, python-multipart); without it the command
exits 2 naming the install. Binds to 127.0.0.1 by default; on any other address a token is
required (generated unless ``--token``) and printed in the URL. This module imports none of the
web stack until the command runs: ``ftx --help`` stays light.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click

from ftx.errors import BadInput

UI_MODULES = {"starlette": "starlette", "uvicorn": "uvicorn", "jinja2": "jinja2"}
UI_MODULES["multipart"] = "python-multipart"
INSTALL = "pip install 'ftx-core[ui]'"


def check_ui_extra() -> None:
    """BadInput naming the install when a package of the ``ui`` extra is missing."""
    missing = [pkg for mod, pkg in UI_MODULES.items() if importlib.util.find_spec(mod) is None]
    if missing:
        raise BadInput(
            f"ftx ui needs the ui extra: {INSTALL} (missing: {', '.join(missing)})",
            hint=INSTALL,
        )


@click.command("ui")
@click.option(
    "--runs",
    "runs_dir",
    default="runs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The runs root: every run directory in it is listed; new runs are created in it.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8686, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token",
    default=None,
    help="Require this token (default: one is generated when --host is not loopback).",
)
def ui_cmd(runs_dir: str, host: str, port: int, token: str | None) -> None:
    """Serve the web app: runs, live progress, new-run form, compare, plan, chat, eval."""
    check_ui_extra()
    from ftx.ui.security import is_loopback, new_token

    root = Path(runs_dir)
    if root.exists() and not root.is_dir():
        raise BadInput(f"--runs {root} is not a directory", hint="pass a directory of runs")
    if token is None and not is_loopback(host):
        token = new_token()
    import uvicorn

    from ftx.ui.app import create_app

    app = create_app(root, token=token, host=host, warm=True)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/runs" + (f"?token={token}" if token else "")
    click.echo(f"ftx ui: runs in {root.resolve()}  ->  {url}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)


COMMANDS = [ui_cmd]
