"""The bad paths, in Chromium: a typo'd option shows the CLI's message beside its field and starts
nothing; run names and paths outside the runs root are refused; a cross-site form post is
refused."""

from __future__ import annotations

import http.client
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ftx.testing.browser import free_port, navigation_status
from tests.browser.pages import (
    by_css,
    fetch_status,
    fill,
    open_new_run,
    run_form_fields,
    text,
    wait,
)

pytestmark = pytest.mark.browser

SECRET = "ftx-secret-outside-the-root"


def run_dirs(root: Path) -> set[str]:
    """The run directories under ``root`` (not the UI's own ``.ui`` folder)."""
    return {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}


def test_a_typod_option_value_shows_the_field_error(
    browser, ui_url, runs_root, ftx_tiny_model, ftx_tiny_data
):
    before = run_dirs(runs_root)
    open_new_run(browser, ui_url, "sft", via_nav=False)
    fill(browser, run_form_fields(ftx_tiny_model, ftx_tiny_data, "typo"))
    fill(browser, {"method-layers": "lst:1"})
    navigation_status(browser, ui_url)  # forget earlier responses
    by_css(browser, "button#submit").click()
    wait(browser, lambda d: text(d, "#error-method-layers"), message="no error beside layers")
    assert navigation_status(browser, f"{ui_url}/new") == 400
    assert "lst:1" in text(browser, "#error-method-layers")
    assert by_css(browser, "#field-method-layers").get_attribute("value") == "lst:1"
    assert by_css(browser, "#field-model").get_attribute("value") == str(ftx_tiny_model)
    assert run_dirs(runs_root) == before


def test_a_missing_model_path_is_reported_beside_the_model_field(
    browser, ui_url, runs_root, tmp_path, ftx_tiny_data
):
    before = run_dirs(runs_root)
    open_new_run(browser, ui_url, "sft", via_nav=False)
    missing = tmp_path / "no-such-model"
    fill(browser, run_form_fields(missing, ftx_tiny_data, "missing"))
    by_css(browser, "button#submit").click()
    wait(browser, lambda d: text(d, "#error-model"), message="no error beside the model")
    assert str(missing) in text(browser, "#error-model")
    assert run_dirs(runs_root) == before


@pytest.fixture
def outside(runs_root: Path, tmp_path: Path) -> Iterator[Path]:
    """A run-looking directory outside the root, and a symlink to it inside the root."""
    target = tmp_path / "outside"
    target.mkdir()
    (target / "summary.json").write_text(json.dumps({"status": "finished", "method": SECRET}))
    (target / "report.md").write_text(SECRET)
    link = runs_root / "escape"
    link.symlink_to(target, target_is_directory=True)
    yield target
    link.unlink()


@pytest.mark.parametrize(
    "path",
    [
        "/runs/..%2F..%2F..%2Fetc%2Fpasswd",
        "/runs/%2Fetc%2Fpasswd",
        "/runs/..%2F..%2F..%2Fetc%2Fpasswd/chat",
        "/runs/%2Fetc/eval",
        "/runs/escape",
        "/runs/escape/chat",
        "/runs/escape/events",
    ],
)
def test_paths_outside_the_runs_root_are_refused(browser, ui_url, outside, path):
    browser.get(f"{ui_url}/runs")
    assert fetch_status(browser, path) in (400, 404)
    browser.get(ui_url + path)
    assert "root:x:0:0" not in browser.page_source and SECRET not in browser.page_source


def test_raw_dot_dot_requests_are_refused(ui_url):
    """Browsers resolve ``..`` before sending; a script does not."""
    host = urlsplit(ui_url)
    for path in ("/runs/../../../etc/passwd", "/runs/..%2f..%2f..%2fetc%2fpasswd/chat"):
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
        conn.close()
        assert response.status in (400, 404) and "root:x:0:0" not in body, path


@pytest.mark.parametrize("name", ["../escaped", "/tmp/ftx-ui-absolute", "a/../../escaped"])
def test_run_names_outside_the_root_are_refused(
    browser, ui_url, runs_root, ftx_tiny_model, ftx_tiny_data, name
):
    before = run_dirs(runs_root)
    open_new_run(browser, ui_url, "sft", via_nav=False)
    fill(browser, run_form_fields(ftx_tiny_model, ftx_tiny_data, name))
    navigation_status(browser, ui_url)
    by_css(browser, "button#submit").click()
    wait(browser, lambda d: text(d, "#error-output"), message="no error beside the run name")
    assert navigation_status(browser, f"{ui_url}/new") == 400
    assert run_dirs(runs_root) == before
    assert not (runs_root.parent / "escaped").exists()
    assert not Path("/tmp/ftx-ui-absolute").exists()


@pytest.fixture
def other_site() -> Iterator[tuple[str, dict[str, str]]]:
    """Another origin (``http://localhost:PORT``) serving ``pages[path]`` as HTML."""
    pages: dict[str, str] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}", pages
    server.shutdown()
    server.server_close()


def auto_post(action: str, fields: dict[str, Any]) -> str:
    inputs = "".join(f'<input name="{k}" value="{v}">' for k, v in fields.items())
    return (
        f'<form id="f" method="post" action="{action}">{inputs}</form>'
        "<script>document.getElementById('f').submit()</script>"
    )


def test_a_cross_site_post_is_refused(
    browser, ui_url, runs_root, other_site, ftx_tiny_model, ftx_tiny_data
):
    site, pages = other_site
    browser.get(f"{ui_url}/new?plugin=sft")  # the person has the app open: its cookies are set
    token = by_css(browser, 'form#new-run input[name="csrf"]').get_attribute("value")
    fields = {
        "plugin": "sft",
        "objective": "supervised",
        "model": ftx_tiny_model,
        "data": ftx_tiny_data["train"],
        "train.max_steps": 1,
    }
    pages["/no-token"] = auto_post(f"{ui_url}/new", {**fields, "output": "csrf-a"})
    # Even the right token (leaked somehow) does not help a post from another origin.
    pages["/token"] = auto_post(f"{ui_url}/new", {**fields, "output": "csrf-b", "csrf": token})
    for page in ("/no-token", "/token"):
        navigation_status(browser, ui_url)
        browser.get(site + page)
        wait(browser, lambda d: d.current_url.startswith(ui_url), message=f"{page} did not post")
        wait(browser, lambda d: navigation_status(d, f"{ui_url}/new") == 403, 10, page)
    assert not {"csrf-a", "csrf-b"} & run_dirs(runs_root)
