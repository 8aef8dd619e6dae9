"""The runs root, read: one :class:`RunRow` per run directory, its status and headline numbers.

Everything comes from the run directory (``summary.json``, ``config.yaml``), the run's lock
(:func:`ftx.runner.rundir.lock_owner`) and, for runs this UI started, their launch record
(:mod:`ftx.ui.launcher`). Status is the summary's (``running``, ``finished``, ``interrupted``,
``failed``) with two more:

* ``stale``: the summary says ``running`` but no live process holds the run's lock (its owner
  died without recording an ending); it can be resumed;
* ``unreadable``: ``summary.json`` or ``config.yaml`` is missing or not what ftx writes (a
  corrupt or half-copied directory, a directory that is not a run); the page says which.

A run the UI launched (or resumed) is ``running`` while its process lives, before its directory
exists or its lock is taken. Parsed files are cached by (mtime, size), so listing 500 runs
again costs little more than a ``stat`` each.
Importing this module imports nothing heavy.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftx.report import is_training_row
from ftx.ui import launcher

STATUSES = ("running", "finished", "interrupted", "failed", "stale", "unreadable")
_cache: dict[Path, tuple[tuple[int, int], Any]] = {}
"""Parsed files by path: (their (mtime, size) when parsed, the value or the parse error)."""


@dataclass
class RunRow:
    """One run as the runs page and the run page show it."""

    name: str
    path: Path
    status: str
    started: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None
    pid: int | None = None
    compare: bool = False

    @property
    def method(self) -> str:
        return str(self.summary.get("plugin") or self.config.get("plugin") or "")

    @property
    def objective(self) -> str:
        found = self.summary.get("objective") or (self.config.get("objective") or {}).get("name")
        return str(found or "")

    @property
    def model(self) -> str:
        name = (self.config.get("model") or {}).get("name")
        return str(name) if name else ("demo" if self.config else "")

    def number(self, key: str) -> str:
        """A summary number for the table (``""`` when missing or not a number): ``*_bytes`` as
        GiB, ``*time_s`` as seconds with one decimal, others as they are."""
        value = self.summary.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return ""
        if key.endswith("_bytes"):
            return f"{value / 2**30:.2f} GiB"
        if key.endswith("time_s"):
            return f"{value:.1f} s"
        return f"{value:g}"

    def score(self, key: str) -> str:
        """``"exact 0.125"`` for ``eval_before``/``eval_after``, ``""`` when not scored."""
        ev = self.summary.get(key)
        score = ev.get("score") if isinstance(ev, dict) else None
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            return ""
        return f"{ev.get('metric', '')} {score:.3f}".strip()


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _cached(path: Path, parse: Any) -> Any:
    """``parse(text)`` of ``path``, cached by (mtime, size); None for a missing file;
    the exception itself (ValueError…) for one that does not parse."""
    sig = _signature(path)
    if sig is None:
        _cache.pop(path, None)
        return None
    hit = _cache.get(path)
    if hit is not None and hit[0] == sig:
        return hit[1]
    try:
        value = parse(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError) as exc:
        value = exc
    except Exception as exc:  # a YAML error: the file is not what ftx writes
        value = ValueError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    _cache[path] = (sig, value)
    return value


def _parse_config(text: str) -> Any:
    """``config.yaml`` as ftx wrote it (``yaml.safe_dump``), read with libyaml's safe loader
    when PyYAML has it (several times faster than the pure-Python one: the index reads every
    run's). The index only shows names from it; ``ftx run --resume`` reads it properly."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def read_run(root: Path, name: str) -> RunRow:
    """The run ``root/name`` (or a run being launched under that name) with its status."""
    from ftx.runner.rundir import lock_owner

    path = root / name
    launch = launcher.read_record(root, name)
    # Who runs it first, the files after: a run writes its last summary before it lets go of
    # its lock, so a summary read after the lock was seen free is that last one (read before,
    # it could still say running, and a run that just finished would look stale).
    owner = lock_owner(path)
    starting = launch is not None and launcher.alive(launch)
    summary = _cached(path / "summary.json", json.loads)
    config = _cached(path / "config.yaml", _parse_config)
    row = RunRow(name=name, path=path, status="unreadable", started=_started(path, launch))
    if isinstance(summary, dict):
        row.summary = summary
    if isinstance(config, dict):
        row.config = config
    row.pid = owner or (launch.get("pid") if starting else None)
    if owner is not None or starting:
        row.status = "running"  # training, or (a launch or resume) validating, loading
    elif summary is None and launch is not None:
        row.status, row.problem = "failed", "exited before it wrote summary.json: see the log"
    elif summary is None and (path / "compare.json").is_file():
        row.compare = True
        row.problem = "an ftx compare directory, not a run: its runs are inside it"
    elif summary is None:
        row.problem = "no summary.json: not an ftx run directory, or one cut short"
    elif not isinstance(summary, dict) or summary.get("status") not in STATUSES[:4]:
        row.problem = f"summary.json is not what ftx writes ({_why(summary)})"
    elif not isinstance(config, dict):
        row.problem = "config.yaml " + ("is missing" if config is None else f"is corrupt: {config}")
    elif summary["status"] == "running":
        row.status, row.problem = "stale", "summary says running, but no process holds its lock"
    else:
        row.status = summary["status"]
    return row


def _why(value: Any) -> str:
    if isinstance(value, Exception):
        return f"{type(value).__name__}: {value}"
    return "no status" if isinstance(value, dict) else f"a JSON {type(value).__name__}"


def _started(path: Path, launch: dict[str, Any] | None) -> float:
    """When the run started: its launch, else its config.yaml's or directory's mtime."""
    if launch and isinstance(launch.get("started"), (int, float)):
        return float(launch["started"])
    for candidate in (path / "config.yaml", path):
        sig = _signature(candidate)
        if sig is not None:
            return sig[0] / 1e9
    return 0.0


def metrics(run_dir: Path) -> list[dict[str, Any]]:
    """``run_dir/metrics.jsonl``'s rows (:func:`ftx.report.metrics_rows`), parsed again only
    when the file changed: any number of pages following a run share one parse per step."""
    from ftx.report import metrics_rows

    rows = _cached(run_dir / "metrics.jsonl", metrics_rows)
    return rows if isinstance(rows, list) else []


def run_names(root: Path) -> list[str]:
    """Every run directory name in ``root`` (not hidden) and every run launched from the UI
    whose directory does not exist yet."""
    names = set(launcher.launched_names(root))
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                if not entry.name.startswith(".") and entry.is_dir():
                    names.add(entry.name)
    except OSError:
        return sorted(names)
    return sorted(names)


def list_runs(root: Path) -> list[RunRow]:
    """Every run under ``root``, newest first."""
    rows = [read_run(root, name) for name in run_names(root)]
    return sorted(rows, key=lambda r: (r.started, r.name), reverse=True)


PACE_ROWS = 10
"""ETA: the pace of the last this-many logged steps."""


def progress(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"step", "max_steps", "eta_s"}`` from ``metrics.jsonl`` rows: the last logged step, the
    planned total and the time left at the pace of the last :data:`PACE_ROWS` logged steps
    (their ``time``); None where unknown. Evaluation rows (validation loss, the task metric)
    share their step with a training row and carry neither total nor time: they count for the
    step only."""
    rows = [r for r in rows if _whole(r.get("step"))]
    if not rows:
        return {"step": 0, "max_steps": None, "eta_s": None}
    trained = [r for r in rows if is_training_row(r)]
    step = rows[-1]["step"]
    total = trained[-1].get("max_steps") if trained else None
    total = total if _whole(total) and total > 0 else None
    recent = [r for r in trained[-PACE_ROWS:] if isinstance(r.get("time"), (int, float))]
    eta = None
    if len(recent) > 1 and total is not None:
        steps = recent[-1]["step"] - recent[0]["step"]
        if steps > 0:
            per_step = (recent[-1]["time"] - recent[0]["time"]) / steps
            eta = round(max(0.0, per_step * (total - step)), 1)
    return {"step": step, "max_steps": total, "eta_s": eta}


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
