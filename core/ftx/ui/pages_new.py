"""The new-run form (``/new``): rendered from the option schemas, validated by ``ftx run``'s
own checks, submitted as a background ``ftx run`` (:mod:`ftx.ui.form`, :mod:`ftx.ui.launcher`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ftx.errors import BadInput
from ftx.ui import form, launcher
from ftx.ui.app import render
from ftx.ui.security import check_post, run_path


def _pair(params: Any) -> tuple[str, str]:
    from ftx.catalogue import DEFAULT_OBJECTIVE

    methods, _ = form.plugin_names()
    default_plugin = "qlora" if "qlora" in methods else (methods[0] if methods else "")
    return (
        str(params.get("plugin") or default_plugin),
        str(params.get("objective") or DEFAULT_OBJECTIVE),
    )


def _output(root: Path, sub: form.Submission) -> tuple[Path | None, str]:
    """The run directory the form names (default ``PLUGIN-TIME``), or None and why not."""
    from ftx.runner.rundir import default_output

    name = sub.output or default_output(sub.plugin).name
    path = run_path(root, name)
    if path is None:
        return None, (
            f"run name {name!r}: give a plain name inside the runs root (letters, digits, "
            "_ . = + -), no '/', '..' or absolute path"
        )
    return path, ""


async def _context(
    request: Request, plugin: str, objective: str, sub: form.Submission | None
) -> dict[str, Any]:
    methods, objectives = await run_in_threadpool(form.plugin_names)
    fields = await run_in_threadpool(form.fields, plugin, objective)
    sub = sub or form.Submission(plugin=plugin, objective=objective, values={})
    root = request.app.state.settings.root
    path, _ = _output(root, sub)
    args = form.run_args(sub, path or root / (sub.output or "NAME"))
    return {
        "methods": methods,
        "objectives": objectives,
        "plugin": plugin,
        "objective": objective,
        "fields": fields,
        "sections": [(s, [f for f in fields if f.section == s]) for s in form.SECTIONS],
        "sub": sub,
        "command": launcher.display(args),
        "errors": {},
        "root": root,
    }


async def new_page(request: Request) -> Response:
    plugin, objective = _pair(request.query_params)
    try:
        context = await _context(request, plugin, objective, None)
    except BadInput as exc:
        return render(request, "error.html", {"message": form.message(exc)}, 400)
    return render(request, "new.html", context)


async def command_preview(request: Request) -> Response:
    """``GET /new/command?…form fields…``: the ``ftx run`` command the form would start."""
    plugin, objective = _pair(request.query_params)
    try:
        fields = await run_in_threadpool(form.fields, plugin, objective)
    except BadInput as exc:
        return PlainTextResponse(form.message(exc), status_code=400)
    sub = form.read_submission(request.query_params, fields, plugin=plugin, objective=objective)
    root = request.app.state.settings.root
    path, why = _output(root, sub)
    if path is None:
        return PlainTextResponse(why, status_code=400)
    return PlainTextResponse(launcher.display(form.run_args(sub, path)))


async def submit(request: Request) -> Response:
    refused = await check_post(request)
    if refused:
        return PlainTextResponse(refused, status_code=403)
    posted = await request.form()
    plugin, objective = _pair(posted)
    try:
        fields = await run_in_threadpool(form.fields, plugin, objective)
    except BadInput as exc:
        return render(request, "error.html", {"message": form.message(exc)}, 400)
    sub = form.read_submission(posted, fields, plugin=plugin, objective=objective)
    root = request.app.state.settings.root
    context = await _context(request, plugin, objective, sub)
    path, why = _output(root, sub)
    record = launcher.read_record(root, path.name) if path is not None else None
    if path is not None and record is not None and launcher.alive(record):
        why = f"a run named {path.name!r} is already starting: choose another name"
    if why:
        context["errors"] = {"error-output": why}
        return render(request, "new.html", context, 400)
    try:
        await run_in_threadpool(form.validate, sub, path)
    except BadInput as exc:
        context["errors"] = {form.field_of(exc, fields, sub): form.message(exc)}
        return render(request, "new.html", context, 400)
    launcher.launch(root, path.name, form.run_args(sub, path))
    return RedirectResponse(f"/runs/{path.name}", status_code=303)


ROUTES = [
    Route("/new", new_page),
    Route("/new", submit, methods=["POST"]),
    Route("/new/command", command_preview),
]
