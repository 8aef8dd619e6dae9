"""Who may talk to ``ftx ui`` and what a browser may name.

* **Token.** On a loopback address the server answers the local user only (and checks the
  ``Host`` header, so a web page cannot reach it through DNS rebinding). On any other address
  every request must carry the token: ``?token=T`` once (it is then kept in an HttpOnly
  cookie), the cookie, or the header ``X-Ftx-Token``. A token given with ``--token`` on
  loopback is required there too.
* **Cross-site requests.** Every POST carries a CSRF token equal to the ``ftx_csrf`` cookie
  (double submit: the hidden form field ``csrf`` or the header ``X-Ftx-Csrf``; pages carry it
  in the form and in ``<meta name="ftx-csrf">``, the cookie is HttpOnly), and its
  ``Origin`` (or ``Referer``), when the browser sends one, must be this server.
* **Paths.** A run name from the browser is one plain path component that resolves inside the
  runs root (no ``..``, no absolute path, no symlink out); anything else is 404.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN_COOKIE = "ftx_token"
CSRF_COOKIE = "ftx_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-ftx-csrf"
TOKEN_HEADER = "x-ftx-token"
RUN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=+-]{0,199}$")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    """``127.0.0.0/8``, ``::1`` or ``localhost``."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two secrets; False when either is missing."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def run_path(root: Path, name: str) -> Path | None:
    """``root/name`` when ``name`` is a run name inside ``root``, else None (caller: 404).

    ``name`` must be a single component of letters, digits and ``_ . = + -`` not starting
    with a dot; the resolved path (symlinks followed) must stay inside the resolved root."""
    if not RUN_NAME.match(name) or name in (".", ".."):
        return None
    real_root = root.resolve()
    path = (root / name).resolve()
    if path.parent != real_root:
        return None
    return root / name


def _cookies(scope: dict[str, Any]) -> dict[str, str]:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            jar = SimpleCookie()
            jar.load(value.decode("latin-1"))
            return {k: m.value for k, m in jar.items()}
    return {}


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


class Guard:
    """ASGI middleware: the token and the ``Host`` check on every request; sets the CSRF cookie
    (and the token cookie after ``?token=``) on responses."""

    def __init__(self, app: Any, *, token: str | None, loopback: bool) -> None:
        self.app = app
        self.token = token
        self.loopback = loopback

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        cookies = _cookies(scope)
        host = (_header(scope, b"host") or "").rsplit(":", 1)[0]
        if self.loopback and host and not is_loopback(host):
            await _refuse(send, 403, "ftx ui: this server answers on localhost only")
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        from_query = (query.get("token") or [None])[0]
        if self.token is not None:
            given = from_query or _header(scope, TOKEN_HEADER.encode()) or cookies.get(TOKEN_COOKIE)
            if not same(given, self.token):
                await _refuse(
                    send, 401, "ftx ui: token required (open the URL ftx ui printed, with ?token=)"
                )
                return
        csrf = cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        scope.setdefault("state", {})["csrf"] = csrf
        extra = []
        if CSRF_COOKIE not in cookies:
            extra.append(f"{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Strict")
        if self.token is not None and from_query:
            extra.append(f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict")

        async def send_with_cookies(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and extra:
                headers = list(message.get("headers", []))
                headers += [(b"set-cookie", c.encode("latin-1")) for c in extra]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookies)


async def _refuse(send: Any, status: int, text: str) -> None:
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def check_post(request: Any) -> str | None:
    """The reason to refuse this state-changing request, or None: the CSRF token (form field
    or header) must equal the cookie, and ``Origin``/``Referer``, when sent, must be this
    server. Reads the form (Starlette caches it for the endpoint)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin and origin != "null":
        parts = urlsplit(origin)
        if parts.netloc != request.headers.get("host", ""):
            return f"cross-site request refused (origin {parts.scheme}://{parts.netloc})"
    elif origin == "null":
        return "cross-site request refused (opaque origin)"
    expected = request.cookies.get(CSRF_COOKIE)
    given = request.headers.get(CSRF_HEADER)
    if given is None and "form" in request.headers.get("content-type", ""):
        given = (await request.form()).get(CSRF_FIELD)
    if not same(given, expected):
        return "missing or wrong CSRF token: reload the page and try again"
    return None
