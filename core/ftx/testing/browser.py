"""A real browser against a real ``ftx ui``: what the browser tests and the screenshot script
share.

* :func:`browser_missing` says why the browser tests cannot run here (``None`` when they can):
  Selenium, Debian's ``chromium`` and its matching ``chromium-driver``, and the ``ui`` extra.
* :func:`chromium` starts headless Chromium through that chromedriver. Selenium is given both
  paths, so its own driver manager (which would download a browser) never runs.
* :func:`serve_ui` runs ``ftx ui --runs ROOT --port P`` as a subprocess (the interpreter's own
  ``python -m ftx``) and yields its URL once it answers; on exit it stops the server and then
  (unless told not to) every run under ROOT still holding its lock (Ctrl-C first, as the UI's
  Stop button does).

Nothing here downloads anything or imports Selenium at import time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

UI_MODULES = ("starlette", "uvicorn", "jinja2", "multipart", "ftx.ui")
"""What ``ftx ui`` imports: the ``ui`` extra's packages and the UI itself."""


def browser_missing() -> str | None:
    """Why a browser test cannot run on this machine, with the fix; ``None`` when it can."""
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed: pip install -e '.[dev]'"
    for tool in ("chromium", "chromedriver"):
        if shutil.which(tool) is None:
            return f"{tool} not found: apt-get install chromium chromium-driver (Debian)"
    for module in UI_MODULES:
        if importlib.util.find_spec(module) is None:
            return f"{module} not importable: pip install -e '.[ui]'"
    return None


def chromium(*, width: int = 1280, height: int = 900, performance_log: bool = False) -> Any:
    """A headless Chromium WebDriver on the system's ``chromium`` and ``chromedriver``
    (``PATH``), with a ``width`` x ``height`` window. ``performance_log`` records the DevTools
    network events, which :func:`navigation_status` reads. The caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    if performance_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "chromedriver")
    return webdriver.Chrome(service=service, options=options)


def navigation_status(driver: Any, url_prefix: str) -> int | None:
    """The HTTP status of the newest document response whose URL starts with ``url_prefix``
    among the performance-log events since the last call (needs ``performance_log=True``)."""
    import json

    status = None
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") != "Network.responseReceived":
            continue
        params = message["params"]
        if params.get("type") == "Document" and params["response"]["url"].startswith(url_prefix):
            status = int(params["response"]["status"])
    return status


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_ui(
    runs: Path, *, log: Path, port: int | None = None, wait_s: float = 60, stop: bool = True
) -> Iterator[str]:
    """Run ``ftx ui --runs RUNS`` on 127.0.0.1 (``port`` or a free one), its output in ``log``;
    yield its base URL once ``GET /runs`` answers. Raises RuntimeError with the log's tail if it
    exits or does not answer within ``wait_s`` seconds. On exit the server is stopped and, with
    ``stop``, every run under RUNS still going (:func:`stop_runs`)."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "ftx", "ui", "--runs", str(runs), "--port", str(port)]
    with open(log, "w", encoding="utf-8") as out:
        server = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_answering(server, f"{url}/runs", log, wait_s)
        yield url
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if stop:
            stop_runs(runs)


def _wait_until_answering(server: subprocess.Popen, url: str, log: Path, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"ftx ui exited with {server.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"ftx ui did not answer {url} in {wait_s} s:\n{_tail(log)}"
                ) from error
            time.sleep(0.1)


def stop_runs(runs: Path, *, grace_s: float = 20) -> list[int]:
    """Stop every run under ``runs`` whose lock a live process holds: SIGINT (Ctrl-C: the run
    saves a checkpoint and exits), SIGKILL once ``grace_s`` seconds pass with its lock still
    held. Returns the pids signalled. Runs the UI launched live in their own sessions, so
    stopping the server leaves them running."""
    from ftx.runner.rundir import lock_owner

    held = {d: pid for d in runs.iterdir() if d.is_dir() and (pid := lock_owner(d)) is not None}
    for pid in held.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + grace_s
    for run, pid in held.items():
        while lock_owner(run) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if lock_owner(run) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return list(held.values())


def _tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-chars:] if log.exists() else ""
