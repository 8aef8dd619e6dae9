"""Training progress that updates in place in a Jupyter cell.

In a terminal ftx prints one line per logged step. In a notebook that would fill the cell, so
the API's console (:func:`notebook_console`) keeps one display for the run's progress and
replaces its content at each step (IPython's ``display(..., display_id=True)`` and
``update``: no widget library needed, and nbclient records the last state). Everything else
the run prints (scores, tables) still goes to the cell as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

BAR_WIDTH = 24


def progress_bar(step: int, total: int, detail: str) -> str:
    """``"[███████░░░░] 12/60  loss 0.4210 …"``: a text bar for a display that updates."""
    done = BAR_WIDTH if total <= 0 else min(BAR_WIDTH, BAR_WIDTH * step // total)
    bar = "█" * done + "░" * (BAR_WIDTH - done)
    return f"[{bar}] {step}/{total}{detail}"


class LiveLine:
    """One display in the cell whose text each :meth:`show` replaces (created on first use).

    ``display``: IPython's ``display`` (or a stand-in with its signature, for tests)."""

    def __init__(self, display: Callable[..., Any]) -> None:
        self._display = display
        self._handle: Any = None

    def show(self, text: str) -> None:
        content = {"text/plain": text}
        if self._handle is None:
            self._handle = self._display(content, raw=True, display_id=True)
        else:
            self._handle.update(content, raw=True)


def notebook_console() -> Any:
    """A rich console on stdout; in Jupyter it also carries ``live_progress``, a
    :class:`LiveLine` that :class:`ftx.callbacks.MetricsLog` writes step lines to."""
    from rich.console import Console

    console = Console()
    if console.is_jupyter:
        from IPython.display import display

        console.live_progress = LiveLine(display)
    return console
