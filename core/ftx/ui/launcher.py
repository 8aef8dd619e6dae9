"""Starting, stopping and resuming ``ftx run`` processes from the UI.

A run is started as an argument list (``[python, -m, ftx, run, …]``: never a shell), in its own
session (the server's Ctrl-C does not reach it, and it outlives the server), with stdin closed
and stdout/stderr in ``ROOT/.ui/NAME.log``. ``ROOT/.ui/NAME.json`` records the launch (pid,
argv, start time) so the UI shows the run before its directory exists and the log after. The
run directory itself is the run's alone: ``ftx run`` refuses a non-empty ``--output``.

Stop sends SIGINT, Ctrl-C's signal, to the process holding the run's lock
(:func:`ftx.runner.rundir.lock_owner`), so a run started from a terminal stops the same way:
it finishes the step, saves a checkpoint and records ``interrupted``.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

UI_DIR = ".ui"


def ftx_argv(args: list[str]) -> list[str]:
    """``ftx ARGS`` as this interpreter runs it: ``[python, -m, ftx, *args]``."""
    return [sys.executable, "-m", "ftx", *args]


def display(args: list[str]) -> str:
    """The command a person would type: ``ftx run --plugin sft …``, shell-quoted."""
    return shlex.join(["ftx", *args])


def record_path(root: Path, name: str) -> Path:
    return root / UI_DIR / f"{name}.json"


def log_path(root: Path, name: str) -> Path:
    return root / UI_DIR / f"{name}.log"


def read_record(root: Path, name: str) -> dict[str, Any] | None:
    """The launch record of run ``name``, or None when the UI did not start it."""
    try:
        record = json.loads(record_path(root, name).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def launched_names(root: Path) -> list[str]:
    folder = root / UI_DIR
    if not folder.is_dir():
        return []
    return [p.stem for p in folder.glob("*.json")]


_children: dict[int, subprocess.Popen] = {}


def alive(record: dict[str, Any]) -> bool:
    """Whether the launched process still runs (a child of this server that exited is not)."""
    from ftx.runner.rundir import pid_alive

    pid = record.get("pid")
    if not isinstance(pid, int):
        return False
    child = _children.get(pid)
    return child.poll() is None if child is not None else pid_alive(pid)


def launch(root: Path, name: str, args: list[str]) -> dict[str, Any]:
    """Start ``ftx ARGS`` for run ``name`` in the background; return its launch record."""
    folder = root / UI_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with log_path(root, name).open("ab") as log:
        child = subprocess.Popen(  # an argument list, no shell
            ftx_argv(args),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "120"},
        )
    _children[child.pid] = child
    threading.Thread(target=child.wait, daemon=True).start()  # reaped: no zombie holds the pid
    record = {"pid": child.pid, "args": args, "command": display(args), "started": time.time()}
    tmp = folder / f".{name}.json.tmp"
    tmp.write_text(json.dumps(record))
    os.replace(tmp, record_path(root, name))
    return record


def stop(root: Path, name: str) -> int | None:
    """SIGINT to the run's process (the lock's owner, else a launch still starting); returns
    the pid signalled, None when nothing runs."""
    from ftx.runner.rundir import lock_owner

    pid = lock_owner(root / name)
    if pid is None:
        record = read_record(root, name)
        pid = record["pid"] if record and alive(record) else None
    if pid is None:
        return None
    try:
        os.kill(pid, signal.SIGINT)
    except (ProcessLookupError, PermissionError):  # gone, or another user's process
        return None
    return pid


def log_tail(root: Path, name: str, limit: int = 8000) -> str:
    """The last ``limit`` characters of the run's launch log, each line as a terminal shows it
    (after its last carriage return); for a run started elsewhere (no launch log: its console
    was a terminal), of its ``metrics.jsonl``, one line per logged step; "" when neither."""
    path = log_path(root, name)
    if not path.is_file():
        path = root / name / "metrics.jsonl"
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - limit))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    # a progress bar redraws its line with "\r": keep what a terminal would show, the last draw
    return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n"))
