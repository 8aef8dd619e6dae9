"""``ftx ui``'s security rules: the token off loopback, the Host check on loopback, CSRF and
same-origin on every POST, run names confined to the runs root, and a clear exit 2 without
the ui extra (that ``ftx --help`` imports no web stack: tests/test_lazy_imports.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ftx.testing.runs import write_run
from tests.ui_helpers import client, csrf, post


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "runs"
    write_run(root, "done", "finished")
    write_run(root, "cut", "interrupted")
    (tmp_path / "outside").mkdir()
    write_run(tmp_path / "outside", "secret", "finished")
    return root


def test_off_loopback_every_request_needs_the_token(root):
    c = client(root, token="s3cret", host="10.1.2.3")
    assert c.get("/runs").status_code == 401
    assert c.get("/static/app.js").status_code == 401
    assert c.get("/runs", headers={"X-Ftx-Token": "wrong"}).status_code == 401
    assert c.get("/runs", headers={"X-Ftx-Token": "s3cret"}).status_code == 200
    first = c.get("/runs?token=s3cret")
    assert first.status_code == 200
    assert "HttpOnly" in first.headers["set-cookie"] or any(
        "HttpOnly" in v for v in first.headers.get_list("set-cookie")
    )
    assert c.get("/runs/done").status_code == 200  # the cookie carries it from now on


def test_the_app_refuses_to_serve_off_loopback_without_a_token(root):
    from ftx.ui.app import create_app

    with pytest.raises(ValueError, match="token"):
        create_app(root, host="0.0.0.0")


def test_on_loopback_a_foreign_host_header_is_refused(root):
    c = client(root)
    assert c.get("/runs").status_code == 200
    assert c.get("/runs", headers={"Host": "evil.example:8686"}).status_code == 403


def test_posts_need_the_csrf_token_and_the_same_origin(root):
    c = client(root)
    token = csrf(c)
    assert c.post("/runs/cut/resume", follow_redirects=False).status_code == 403
    wrong = c.post("/runs/cut/resume", data={"csrf": "forged"}, follow_redirects=False)
    assert wrong.status_code == 403
    cross = post(c, "/runs/cut/stop", headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403 and "cross-site" in cross.text
    other = c.post("/runs/cut/chat", json={"messages": []}, headers={"X-Ftx-Csrf": "forged"})
    assert other.status_code == 403
    ok = post(c, "/runs/cut/stop", headers={"Origin": "http://127.0.0.1"})
    assert ok.status_code == 303
    assert (
        ok.headers["location"]
        == "/runs/cut?error=nothing%20to%20stop%3A%20the%20run%20is%20not%20running"
    )
    assert token == c.cookies.get("ftx_csrf")


@pytest.mark.parametrize(
    "url",
    [
        "/runs/..%2Foutside%2Fsecret",
        "/runs/%2E%2E",
        "/runs/%2Fetc",
        "/runs/.ui",
        "/runs/escape",
        "/runs/escape/events",
        "/runs/escape/chat",
        "/runs/missing",
    ],
)
def test_run_names_resolve_inside_the_root_only(root, url):
    (root / "escape").symlink_to(root.parent / "outside" / "secret")
    response = client(root).get(url)
    assert response.status_code == 404
    assert "A synthetic run" not in response.text


def test_compare_ignores_names_outside_the_root(root):
    (root / "escape").symlink_to(root.parent / "outside" / "secret")
    page = client(root).get("/compare?run=done&run=../outside/secret&run=escape").text
    assert 'data-run="done"' in page and 'compare-row" data-run="escape"' not in page
    assert "not runs in the runs root: ../outside/secret, escape" in page


@pytest.mark.parametrize("name", ["../evil", "/tmp/evil", "a/b", ".hidden"])
def test_the_new_run_form_refuses_a_run_name_outside_the_root(root, name):
    c = client(root)
    form = {"plugin": "sft", "objective": "supervised", "output": name}
    response = post(c, "/new", form)
    assert response.status_code == 400
    assert 'id="error-output" class="field-error">run name' in response.text
    assert not (root.parent / "evil").exists()


def test_without_the_ui_extra_ftx_ui_exits_2_naming_the_install(ftx_cli, monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    result = ftx_cli("ui", "--runs", tmp_path)
    assert result.exit_code == 2
    assert "ftx ui needs the ui extra: pip install 'ftx-core[ui]'" in result.stderr
    assert "Traceback" not in result.output


def test_ftx_ui_off_loopback_prints_a_url_with_a_token_and_requires_it(tmp_path):
    """The real server (``python -m ftx ui --host 0.0.0.0``): the printed URL carries a
    generated token; without it every request is refused."""
    import re
    import socket
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "ftx", "ui", "--runs", str(tmp_path), "--host", "0.0.0.0"]
    server = subprocess.Popen([*argv, "--port", str(port)], stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        token = re.search(rf"http://0\.0\.0\.0:{port}/runs\?token=([\w-]+)", line).group(1)
        assert len(token) >= 24
        url = f"http://127.0.0.1:{port}/runs"
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=5)
            except urllib.error.HTTPError as exc:
                assert exc.code == 401
                break
            except OSError:
                assert time.time() < deadline
                time.sleep(0.2)
        with urllib.request.urlopen(f"{url}?token={token}") as ok:
            assert ok.status == 200 and b'id="runs"' in ok.read()
    finally:
        server.terminate()
        server.wait(timeout=30)
