"""Click command modules attached to ``ftx.cli``, one per command group; none imports torch at
load time. Each module exposes ``COMMANDS``, the click commands or groups it adds."""

from __future__ import annotations

from typing import Any


def stderr_console() -> Any:
    """A rich console on stderr: progress, tables and errors (stdout is kept for results)."""
    from rich.console import Console

    return Console(stderr=True)
