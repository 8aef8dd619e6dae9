"""Errors the CLI turns into clean messages.

`BadInput` is the one exception type for anything the *user* got wrong (config, data rows, paths,
plugin names, missing optional packages). The CLI prints its message without a traceback and exits
with code 2. Raise it before any model is loaded and before the run directory is created.
"""

from __future__ import annotations


class BadInput(Exception):
    """User error: one clear message naming the file/row/key and the fix. Exit code 2."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  hint: {hint}")


class RunFailed(Exception):
    """The run stopped for a reason ftx understands (non-finite loss, out of memory): the CLI
    prints the message, which names the cause and the fix, without a traceback. Exit code 1."""

    exit_code = 1


class RunInterrupted(Exception):
    """Training stopped by SIGINT/SIGTERM after a checkpoint was written. Exit code 130."""

    exit_code = 130
