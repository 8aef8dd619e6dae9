"""SIGTERM (and SLURM's SIGUSR1 warning) behave exactly like Ctrl-C in every phase of a run.

SLURM, Kubernetes, ``timeout`` and preemptible machines stop a job with SIGTERM, whose default
action kills the process on the spot: a run stopped that way while scoring or exporting would
keep ``status: running`` for good. Inside :func:`signals_interrupt`, SIGTERM and SIGUSR1 raise
``KeyboardInterrupt`` as SIGINT does; the training loop replaces all three with its graceful
stop (finish the step, save a checkpoint: :class:`ftx.callbacks.StopOnSignal`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

STOP_SIGNALS = tuple(
    sig for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGUSR1", None)) if sig
)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block every stop signal raises ``KeyboardInterrupt`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
