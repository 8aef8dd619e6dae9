"""Compare (``/compare``): picked runs side by side, with the numbers ``ftx compare``'s report
reads (:func:`ftx.compare_report.cell_row`) and their loss curves overlaid; plan (``/plan``):
``ftx plan``'s per-method memory estimates (:func:`ftx.planner.plan`) as bars against a GPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ftx.errors import BadInput
from ftx.ui.app import render
from ftx.ui.events import loss_points
from ftx.ui.runs import list_runs, metrics
from ftx.ui.security import run_path


def _gib(n: float | None) -> str:
    return "" if not n else f"{n / 2**30:.2f} GiB"


def compare_rows(base: Path, cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One ``ftx compare`` report row (:func:`ftx.compare_report.cell_row`) per cell (a run
    directory ``base/NAME``), plus display strings."""
    from ftx.compare_report import cell_row

    rows = []
    for cell in cells:
        row = cell_row(cell, base / cell["name"])
        row["memory_text"] = _gib(row["memory"])
        row["wall_text"] = "" if row["wall"] is None else f"{row['wall']:.1f} s"
        for key in ("before", "after"):
            value = row[key]
            row[f"{key}_text"] = "" if value is None else f"{row['metric'] or ''} {value:.3f}"
        rows.append(row)
    return rows


def compare_cells(root: Path, name: str) -> list[dict[str, Any]]:
    """The cells of the ``ftx compare`` directory ``root/name`` (its ``compare.json``) whose
    run directories lie inside the runs root; [] for anything else."""
    from ftx.results import CompareResult

    base = run_path(root, name)
    if base is None or not (base / "compare.json").is_file():
        return []
    inside = root.resolve()
    cells = CompareResult(base).cells
    return [
        c
        for c in cells
        if isinstance(c.get("name"), str) and (base / c["name"]).resolve().is_relative_to(inside)
    ]


async def compare_page(request: Request) -> Response:
    """``/compare?run=A&run=B`` (runs picked from the root) or ``/compare?dir=NAME`` (the runs
    of an ``ftx compare`` directory in the root)."""
    root = request.app.state.settings.root
    wanted = request.query_params.getlist("run")
    names = [n for n in dict.fromkeys(wanted) if run_path(root, n) is not None]
    folder = request.query_params.get("dir", "")
    every = await run_in_threadpool(list_runs, root)
    if folder:
        cells = await run_in_threadpool(compare_cells, root, folder)
        rows = await run_in_threadpool(compare_rows, root / folder, cells)
        for row in rows:
            row["name"] = f"{folder}/{row['name']}"
        curves = {r["name"]: loss_points(metrics(root / r["name"])) for r in rows}
    else:
        cells = [{"name": n} for n in names]
        rows = await run_in_threadpool(compare_rows, root, cells)
        curves = {n: loss_points(metrics(root / n)) for n in names}
    context = {
        "every": every,
        "picked": set(names),
        "rows": rows,
        "curves": curves,
        "folder": folder,
        "linked": not folder,
        "refused": [n for n in wanted if run_path(root, n) is None],
    }
    return render(request, "compare.html", context)


def plan_bars(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One bar per method: width in percent of the largest of the peaks and the GPU size."""
    budget = result.get("budget_bytes") or 0
    peaks = [m["peak_bytes"] or 0 for m in result["methods"]]
    scale = max([budget, *peaks, 1])
    bars = []
    for method in result["methods"]:
        peak = method["peak_bytes"]
        bars.append(
            {
                "name": method["name"],
                "peak": peak,
                "peak_text": _gib(peak) or "?",
                "width": 0 if not peak else round(100 * peak / scale, 2),
                "fits": bool(method["fits"]),
                "fits_checkpointed": bool(method["fits_checkpointed"]),
                "status": method["status"],
            }
        )
    return bars


async def plan_page(request: Request) -> Response:
    from ftx.estimates import parse_size
    from ftx.planner import plan

    q = request.query_params
    given = {k: q.get(k, "") for k in ("model", "gpu_mem", "seq_len", "batch_size")}
    given["gpu_mem"] = given["gpu_mem"] or "16GB"
    context: dict[str, Any] = {"given": given, "result": None, "bars": [], "error": ""}
    try:
        seq_len = _positive(given["seq_len"], "seq_len")
        batch = _positive(given["batch_size"], "batch_size")
        result = await run_in_threadpool(
            lambda: plan(
                given["model"] or None,
                seq_len=seq_len,
                batch_size=batch,
                gpu_mem=parse_size(given["gpu_mem"]),
            )
        )
    except BadInput as exc:
        context["error"] = exc.message + (f" — hint: {exc.hint}" if exc.hint else "")
        return render(request, "plan.html", context, 400)
    context["result"] = result
    context["bars"] = plan_bars(result)
    context["budget_text"] = _gib(result.get("budget_bytes"))
    budget, scale = result.get("budget_bytes") or 0, max([b["peak"] or 0 for b in context["bars"]])
    context["budget_left"] = round(100 * budget / max(budget, scale, 1), 2)
    return render(request, "plan.html", context)


def _positive(text: str, name: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise BadInput(f"{name}: {text!r} is not a whole number >= 1")
    return int(text)


ROUTES = [Route("/compare", compare_page), Route("/plan", plan_page)]
