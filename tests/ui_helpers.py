"""Shared helpers of the ``ftx ui`` tests: an app on a runs root, a CSRF-carrying POST, and
waiting for a run to leave ``running``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient

from ftx.ui.app import create_app


def client(root: Path, *, token: str | None = None, host: str = "127.0.0.1") -> TestClient:
    """A client of the app serving ``root``, as a browser on ``host`` sees it."""
    return TestClient(create_app(root, token=token, host=host), base_url=f"http://{host}")


def csrf(c: TestClient) -> str:
    """The CSRF cookie (a first GET sets it)."""
    if c.cookies.get("ftx_csrf") is None:
        c.get("/runs")
    return c.cookies.get("ftx_csrf")


def post(c: TestClient, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
    """A same-origin form POST with the CSRF token, not following redirects."""
    return c.post(url, data={"csrf": csrf(c), **(data or {})}, follow_redirects=False, **kw)


def status_of(c: TestClient, name: str) -> str:
    import re

    page = c.get(f"/runs/{name}").text
    return re.search(r'id="run-status"[^>]*>([^<]*)<', page).group(1)


def wait_until(c: TestClient, name: str, done: Any, timeout: float = 180) -> str:
    """Poll the run page until ``done(status)``; the last status."""
    deadline = time.time() + timeout
    while True:
        status = status_of(c, name)
        if done(status) or time.time() > deadline:
            return status
        time.sleep(0.5)
