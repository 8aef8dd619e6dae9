"""The ``ftx ui`` application: routes, templates and the security guard put together.

:func:`create_app` returns a Starlette ASGI app for one runs root. Pages are rendered on the
server (Jinja2, autoescaped); ``static/app.js`` adds the live parts (server-sent events, the
command preview, chat streaming) with no build step and nothing fetched from elsewhere.
Handlers live in :mod:`ftx.ui.pages_runs` (runs, run page, events, stop, resume),
:mod:`ftx.ui.pages_new` (the new-run form), :mod:`ftx.ui.pages_compare` (compare, plan) and
:mod:`ftx.ui.pages_try` (chat, eval).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ftx.ui.security import Guard, is_loopback

HERE = Path(__file__).parent


@dataclass
class Settings:
    """One server's settings: the runs root and how often live pages poll it (seconds)."""

    root: Path
    poll_s: float = 0.5


def templates() -> Jinja2Templates:
    """The page templates (autoescaped), with the run statuses for the filter."""
    from ftx.ui.runs import STATUSES

    env = Jinja2Templates(directory=str(HERE / "templates"))
    env.env.globals["statuses"] = STATUSES
    return env


def render(request: Any, name: str, context: dict[str, Any], status_code: int = 200) -> Any:
    """Render template ``name`` with the request's CSRF token in the context."""
    tpl = request.app.state.templates
    context = {"csrf": request.scope.get("state", {}).get("csrf", ""), **context}
    return tpl.TemplateResponse(request, name, context, status_code=status_code)


@contextlib.asynccontextmanager
async def warm_up(app: Any) -> AsyncIterator[None]:
    """Once the server listens, import what the new-run form needs (torch, to detect the device
    as ``ftx run`` does; the plugins) in the background, so the first form opens quickly."""
    from ftx.ui import form

    timer = threading.Timer(1.0, lambda: (form.device(), form.plugin_names()))
    timer.daemon = True
    if app.state.warm_up:
        timer.start()
    yield
    timer.cancel()


def create_app(
    root: str | Path, *, token: str | None = None, host: str = "127.0.0.1", warm: bool = False
) -> Any:
    """The app serving runs under ``root``. Off loopback a token is required (pass one).
    ``warm``: import torch and the plugins in the background once serving (:func:`warm_up`)."""
    from ftx.ui import pages_compare, pages_new, pages_runs, pages_try

    if token is None and not is_loopback(host):
        raise ValueError("a token is required on a non-loopback host")
    settings = Settings(root=Path(root))
    routes = [
        Route("/", lambda request: RedirectResponse("/runs", status_code=303)),
        *pages_runs.ROUTES,
        *pages_new.ROUTES,
        *pages_compare.ROUTES,
        *pages_try.ROUTES,
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [Middleware(Guard, token=token, loopback=is_loopback(host))]
    app = Starlette(routes=routes, middleware=middleware, lifespan=warm_up)
    app.state.warm_up = warm
    app.state.settings = settings
    app.state.templates = templates()
    return app
