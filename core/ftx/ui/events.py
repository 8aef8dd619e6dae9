"""A run's live state and the server-sent events that carry it to the browser.

:func:`snapshot` reads the run's status, progress (step, planned steps, ETA: from
``metrics.jsonl``), loss points, held-out scores (``summary.json``) and the log tail.
:func:`stream` polls the run directory and sends what changed, as ``text/event-stream``
events with JSON data:

* ``status`` ``{"status", "problem", "final"}``: first, on every change, and last with
  ``final: true`` once the run is no longer running (then the stream ends);
* ``progress`` ``{"step", "max_steps", "eta_s"}``; ``loss`` ``{"points": [[step, loss], …]}``
  (the points not sent yet); ``heldout`` ``{"before", "after"}``; ``log`` ``{"text"}``.

Each connection polls on its own; the files are parsed again only when they change
(:mod:`ftx.ui.runs`' cache), so any number of tabs can follow one run.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ftx.ui import launcher
from ftx.ui.runs import RunRow, metrics, progress, read_run


def loss_points(rows: list[dict[str, Any]]) -> list[list[float]]:
    """``[[step, loss], …]`` of the rows whose step and loss are finite numbers (a NaN loss,
    which stops a run, is not valid JSON for the browser)."""
    return [
        [r["step"], r["loss"]] for r in rows if _finite(r.get("step")) and _finite(r.get("loss"))
    ]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def snapshot(root: Path, name: str, row: RunRow | None = None) -> dict[str, Any]:
    """Everything the run page's live parts show, as JSON-ready values."""
    row = row or read_run(root, name)
    rows = metrics(row.path)
    return {
        "status": row.status,
        "problem": row.problem or "",
        "final": row.status != "running",
        "progress": progress(rows),
        "points": loss_points(rows),
        "heldout": {"before": row.score("eval_before"), "after": row.score("eval_after")},
        "log": launcher.log_tail(root, name),
    }


def event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n"


def changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """The events that bring a page showing ``old`` to ``new`` (everything when ``old`` is
    None); ``status`` comes last so that a final one closes the stream after the rest."""
    out = []
    if old is None or old["progress"] != new["progress"]:
        out.append(event("progress", new["progress"]))
    sent = 0 if old is None else len(old["points"])
    if len(new["points"]) != sent:
        points = new["points"][sent:] if len(new["points"]) > sent else new["points"]
        out.append(event("loss", {"points": points, "reset": len(new["points"]) < sent}))
    if old is None or old["heldout"] != new["heldout"]:
        out.append(event("heldout", new["heldout"]))
    if old is None or old["log"] != new["log"]:
        out.append(event("log", {"text": new["log"]}))
    if old is None or (old["status"], old["problem"]) != (new["status"], new["problem"]):
        out.append(event("status", {k: new[k] for k in ("status", "problem", "final")}))
    return out


async def stream(request: Any, root: Path, name: str, poll_s: float) -> AsyncIterator[str]:
    """The run's events until it is no longer running or the browser goes away."""
    old: dict[str, Any] | None = None
    while True:
        new = await asyncio.to_thread(snapshot, root, name)
        for text in changes(old, new):
            yield text
        if new["final"]:
            return
        old = new
        if await request.is_disconnected():
            return
        await asyncio.sleep(poll_s)
