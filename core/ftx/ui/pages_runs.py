"""Runs: the list (``/runs``), one run (``/runs/NAME``), its live events, Stop and Resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from ftx.ui import events, launcher
from ftx.ui.app import render
from ftx.ui.runs import list_runs, read_run
from ftx.ui.security import check_post, run_path


def root_of(request: Request) -> Path:
    return request.app.state.settings.root


def named_run(request: Request) -> tuple[Path, str]:
    """The runs root and the run name in the URL; 404 for a name outside the root."""
    root, name = root_of(request), request.path_params["name"]
    if run_path(root, name) is None:
        raise HTTPException(404, f"no run {name!r} in the runs root")
    return root, name


async def runs_page(request: Request) -> Response:
    root = root_of(request)
    status = request.query_params.get("status") or None
    method = request.query_params.get("method") or None
    every = await run_in_threadpool(list_runs, root)  # 500 runs: ~0.1 s, off the event loop
    shown = [r for r in every if (not status or r.status == status)]
    shown = [r for r in shown if (not method or r.method == method)]
    context = {
        "rows": shown,
        "total": len(every),
        "status": status or "",
        "method": method or "",
        "methods": sorted({r.method for r in every if r.method}),
        "root": root,
    }
    return render(request, "runs.html", context)


def run_context(root: Path, name: str) -> dict[str, Any]:
    """What the run page shows, all read from the run directory (and the launch log)."""
    row = read_run(root, name)
    if not row.path.is_dir() and launcher.read_record(root, name) is None:
        raise HTTPException(404, f"no run {name!r} in the runs root")
    snap = events.snapshot(root, name, row)
    report = row.path / "report.md"
    config = row.path / "config.yaml"
    record = launcher.read_record(root, name) or {}
    return {
        "row": row,
        "snap": snap,
        "report": _text(report),
        "config_text": _text(config),
        "summary_items": _summary_items(row.summary),
        "command": record.get("command", ""),
    }


def _text(path: Path, limit: int = 200_000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:limit]
    except OSError:
        return ""


SUMMARY_KEYS = (
    ("status", "status"),
    ("plugin", "method"),
    ("objective", "objective"),
    ("model", "model"),
    ("device", "device"),
    ("trainable_params", "trainable params"),
    ("total_params", "total params"),
    ("steps", "steps"),
    ("tokens_per_s", "tokens/s"),
    ("train_time_s", "train time (s)"),
    ("wall_time_s", "wall time (s)"),
    ("peak_memory_bytes", "peak memory (bytes)"),
    ("final_loss", "final loss"),
    ("error", "error"),
)


def _summary_items(summary: dict[str, Any]) -> list[tuple[str, str]]:
    return [(label, str(summary[k])) for k, label in SUMMARY_KEYS if summary.get(k) is not None]


async def run_page(request: Request) -> Response:
    root, name = named_run(request)
    context = await run_in_threadpool(run_context, root, name)
    context["error"] = request.query_params.get("error", "")
    return render(request, "run.html", context)


async def run_fragments(request: Request) -> Response:
    """The parts of the run page that change when a run ends, rendered for ``app.js``."""
    root, name = named_run(request)
    context = await run_in_threadpool(run_context, root, name)
    tpl = request.app.state.templates.env
    parts = {}
    for part in ("actions", "summary", "report"):
        macro = getattr(tpl.get_template("run_parts.html").module, part)
        parts[part] = str(macro(context["row"], context, request.scope["state"]["csrf"]))
    return JSONResponse(parts)


async def run_events(request: Request) -> Response:
    root, name = named_run(request)
    poll = request.app.state.settings.poll_s
    return StreamingResponse(
        events.stream(request, root, name, poll),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def stop_run(request: Request) -> Response:
    root, name = named_run(request)
    refused = await check_post(request)
    if refused:
        return Response(refused, status_code=403)
    if launcher.stop(root, name) is None:
        return _back(name, "nothing to stop: the run is not running")
    return RedirectResponse(f"/runs/{name}", status_code=303)


def _back(name: str, error: str) -> Response:
    """Back to the run page, with ``error`` shown in ``#action-error``."""
    from urllib.parse import quote

    return RedirectResponse(f"/runs/{name}?error={quote(error)}", status_code=303)


async def resume_run(request: Request) -> Response:
    from ftx.errors import BadInput
    from ftx.runner import RunRequest, prepare

    root, name = named_run(request)
    refused = await check_post(request)
    if refused:
        return Response(refused, status_code=403)
    row = read_run(root, name)
    if row.status == "running":
        return _back(name, "already running")
    output = root / name
    try:
        await run_in_threadpool(prepare, RunRequest(plugin=None, output=str(output), resume=True))
    except BadInput as exc:
        return _back(name, exc.message + (f" — hint: {exc.hint}" if exc.hint else ""))
    launcher.launch(root, name, ["run", "--resume", "--output", str(output)])
    return RedirectResponse(f"/runs/{name}", status_code=303)


ROUTES = [
    Route("/runs", runs_page),
    Route("/runs/{name}", run_page),
    Route("/runs/{name}/fragments", run_fragments),
    Route("/runs/{name}/events", run_events),
    Route("/runs/{name}/stop", stop_run, methods=["POST"]),
    Route("/runs/{name}/resume", resume_run, methods=["POST"]),
]
