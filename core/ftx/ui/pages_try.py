"""Try a finished run: chat (``/runs/NAME/chat``, streamed with :func:`ftx.chat.stream_reply`,
as ``ftx chat``) and eval (``/runs/NAME/eval``, :func:`ftx.evaluate.evaluation`, as
``ftx eval``). The model is loaded once per run (:func:`ftx.inference.load_for_inference`)
and kept for the next message; one model at a time."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ftx.errors import BadInput
from ftx.ui.app import render
from ftx.ui.pages_runs import named_run
from ftx.ui.security import check_post

EVAL_METRICS = ("exact", "json", "loss", "pairwise")
MAX_NEW_TOKENS = 256
_loaded: dict[Path, Any] = {}
_lock = threading.Lock()


def loaded_model(run_dir: Path) -> Any:
    """The run's trained model, loaded on first use; BadInput for a run without ``model/``."""
    from ftx.inference import load_for_inference, resolve_artifact

    with _lock:
        if run_dir not in _loaded:
            resolve_artifact(run_dir)
            _loaded.clear()  # one model in memory at a time
            _loaded[run_dir] = load_for_inference(run_dir)
        return _loaded[run_dir]


async def chat_page(request: Request) -> Response:
    _, name = named_run(request)
    return render(request, "chat.html", {"name": name})


def _messages(body: Any) -> tuple[list[dict[str, str]], int]:
    """The conversation the page posts, ``{"messages": [{"role", "content"}, …]}`` ending with
    a user turn, and its ``max_new_tokens`` (1 to :data:`MAX_NEW_TOKENS`, default that);
    BadInput otherwise."""
    messages = body.get("messages") if isinstance(body, dict) else None
    limit = body.get("max_new_tokens", MAX_NEW_TOKENS) if isinstance(body, dict) else 0
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_NEW_TOKENS:
        raise BadInput(f"chat: max_new_tokens must be a whole number in [1, {MAX_NEW_TOKENS}]")
    ok = (
        isinstance(messages, list)
        and messages
        and all(
            isinstance(m, dict)
            and m.get("role") in ("system", "user", "assistant")
            and isinstance(m.get("content"), str)
            for m in messages
        )
    )
    if not ok or messages[-1]["role"] != "user":
        raise BadInput("chat: post {'messages': [...]} ending with a user message")
    return [{"role": m["role"], "content": m["content"]} for m in messages], limit


def _pieces(run_dir: Path, messages: list[dict[str, str]], limit: int) -> Iterator[str]:
    from ftx.chat import stream_reply

    try:
        loaded = loaded_model(run_dir)
        for piece in stream_reply(loaded, messages, max_new_tokens=limit):
            yield f"data: {json.dumps({'text': piece})}\n\n"
    except BadInput as exc:
        yield f"event: error\ndata: {json.dumps({'message': exc.message})}\n\n"
        return
    except Exception as exc:  # the stream has started: the page shows it, the server goes on
        message = f"generation failed: {type(exc).__name__}: {exc}"
        yield f"event: error\ndata: {json.dumps({'message': message})}\n\n"
        return
    yield "event: done\ndata: {}\n\n"


async def chat_send(request: Request) -> Response:
    root, name = named_run(request)
    refused = await check_post(request)
    if refused:
        return PlainTextResponse(refused, status_code=403)
    try:
        messages, limit = _messages(await request.json())
    except (BadInput, ValueError) as exc:
        return PlainTextResponse(getattr(exc, "message", str(exc)), status_code=400)
    return StreamingResponse(
        _pieces(root / name, messages, limit),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


async def eval_page(request: Request) -> Response:
    root, name = named_run(request)
    context = {"name": name, "metrics": EVAL_METRICS, "data": "", "metric": "exact"}
    if request.method == "GET":
        return render(request, "eval.html", {**context, "result": "", "error": ""})
    refused = await check_post(request)
    if refused:
        return PlainTextResponse(refused, status_code=403)
    posted = await request.form()
    data, metric = str(posted.get("data") or "").strip(), str(posted.get("metric") or "exact")
    context.update(data=data, metric=metric)
    try:
        result = await run_in_threadpool(evaluate, root / name, data, metric)
    except BadInput as exc:
        error = exc.message + (f" — hint: {exc.hint}" if exc.hint else "")
        return render(request, "eval.html", {**context, "result": "", "error": error}, 400)
    return render(request, "eval.html", {**context, "result": json.dumps(result), "error": ""})


def evaluate(run_dir: Path, data: str, metric: str) -> dict[str, Any]:
    """``ftx eval RUN --data DATA --metric METRIC``'s JSON object (without the examples)."""
    from ftx.evaluate import evaluation
    from ftx.inference import resolve_artifact

    if metric not in EVAL_METRICS:
        raise BadInput(f"metric {metric!r}: choose one of {', '.join(EVAL_METRICS)}")
    if not data:
        raise BadInput(f"--metric {metric} needs --data (the held-out file to score)")
    resolve_artifact(run_dir)
    result = evaluation(lambda: loaded_model(run_dir), data, metric, 64, "auto", None)
    return {k: v for k, v in result.items() if k != "examples"}


ROUTES = [
    Route("/runs/{name}/chat", chat_page),
    Route("/runs/{name}/chat", chat_send, methods=["POST"]),
    Route("/runs/{name}/eval", eval_page, methods=["GET", "POST"]),
]
