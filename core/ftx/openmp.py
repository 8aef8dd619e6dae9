"""How OpenMP's idle threads wait: spin when the machine is free, sleep when it is shared.

bitsandbytes (imported by TRL and PEFT) loads the system ``libgomp`` next to the one torch ships,
so a training process has two OpenMP runtimes, each with a thread per core. Measured on 2 CPU
cores (``bench/omp_wait_policy.py``, QLoRA step of SmolLM2):

* machine otherwise idle: the default policy (idle threads spin a while before sleeping) is
  ~25% faster than ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep at once, and waking them costs);
* one other busy process: spinning threads take the cores the busy ones need, and the default
  is 1.7x slower than PASSIVE (4.5x with several busy processes).

So :func:`choose_wait_policy` leaves OpenMP's default when no other task is runnable at start
and sets PASSIVE otherwise; a value the user set is never touched. It must run before torch
loads its runtime (the `ftx` command calls it first, :mod:`ftx.process_env`; the Python API only
while torch is not loaded yet).

ftx's own PASSIVE is marked (``FTX_OMP_WAIT_POLICY_CHOSEN``) so that a process it starts —
``ftx compare``'s runs, a notebook's or a test session's ``ftx`` children — decides again at its
own start instead of inheriting its parent's decision as if the user had set it: the compare
parent saw a busy machine at its start, but waits idle while each run trains.
"""

from __future__ import annotations

import os
import time
from collections.abc import MutableMapping

CHOSEN_BY_FTX = "FTX_OMP_WAIT_POLICY_CHOSEN"
"""Environment variable holding the ``OMP_WAIT_POLICY`` value ftx itself set (not the user)."""

DECISION: str = "not decided"
"""What :func:`choose_wait_policy` did, for the run summary."""


def other_runnable_tasks(samples: int = 3, interval_s: float = 0.001) -> int | None:
    """Runnable tasks besides this one, now: the least of a few readings of the running-task
    count in ``/proc/loadavg`` (so a task that runs for a moment is not counted), minus this
    process. None where ``/proc/loadavg`` does not exist (not Linux)."""
    readings = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as fh:
                running = int(fh.read().split()[3].split("/")[0])
        except (OSError, IndexError, ValueError):
            return None
        readings.append(running)
        if i + 1 < samples:
            time.sleep(interval_s)
    return max(0, min(readings) - 1)


def choose_wait_policy(env: MutableMapping[str, str] | None = None) -> str:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` in ``env`` (default ``os.environ``) unless the user set a
    policy or nothing else is running; return (and keep in :data:`DECISION`) what was done. A
    policy a parent ftx process chose (marked with :data:`CHOSEN_BY_FTX`) is not the user's:
    it is dropped and the choice made again."""
    global DECISION
    env = os.environ if env is None else env
    inherited = env.pop(CHOSEN_BY_FTX, None)
    if inherited is not None and env.get("OMP_WAIT_POLICY") == inherited:
        del env["OMP_WAIT_POLICY"]  # a parent ftx process's choice: decided again here
    if "OMP_WAIT_POLICY" in env:
        DECISION = f"{env['OMP_WAIT_POLICY']} (set by the user)"
        return DECISION
    others = other_runnable_tasks()
    if others == 0:
        DECISION = "OpenMP default (no other runnable task at start: idle threads may spin)"
    else:
        env["OMP_WAIT_POLICY"] = env[CHOSEN_BY_FTX] = "PASSIVE"
        why = "unknown load" if others is None else f"{others} other runnable task(s) at start"
        DECISION = f"PASSIVE ({why}: idle threads sleep)"
    return DECISION
