"""Browser tests of ``ftx ui``: Debian's headless Chromium, driven by Selenium, against the real
server started as ``ftx ui`` on a free port over a temporary runs root.

They belong to the fast tier. Without a browser (or Selenium, or the ``ui`` extra) they skip with
the reason; with ``FTX_REQUIRE_BROWSER=1`` (set by ``.ci/run``) they fail instead, so CI cannot
pass without them. Every module here sets ``pytestmark = pytest.mark.browser``: ``-m browser``
selects them, ``-m "not browser"`` leaves them out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ftx.testing.browser import browser_missing, chromium, serve_ui

REQUIRE = "FTX_REQUIRE_BROWSER"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives ftx ui in a real headless Chromium")


@pytest.fixture(scope="session")
def browser_ready() -> None:
    """Skip (or, under ``FTX_REQUIRE_BROWSER=1``, fail) when the browser tests cannot run."""
    reason = browser_missing()
    if reason is None:
        return
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} ({REQUIRE}=1: the browser tests are required here)")
    pytest.skip(f"browser tests: {reason}")


@pytest.fixture(autouse=True)
def _needs_browser(browser_ready: None) -> None:
    """Every test in this folder needs the browser."""


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runs root ``ftx ui`` serves (empty at the start of the session)."""
    return tmp_path_factory.mktemp("ui") / "runs"


@pytest.fixture(scope="session")
def ui_url(browser_ready: None, runs_root: Path) -> Iterator[str]:
    """The base URL of ``ftx ui --runs RUNS_ROOT``, answering; stopped (with any run still
    going) at the end of the session."""
    runs_root.mkdir(parents=True, exist_ok=True)
    with serve_ui(runs_root, log=runs_root.parent / "ui.log") as url:
        yield url


@pytest.fixture(scope="session")
def driver(browser_ready: None) -> Iterator[Any]:
    """One headless Chromium for the session, recording network events (for status codes)."""
    browser = chromium(performance_log=True)
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def browser(driver: Any) -> Iterator[Any]:
    """The session's Chromium with one tab; tabs a test opened are closed after it."""
    first = driver.window_handles[0]
    driver.switch_to.window(first)
    yield driver
    for handle in driver.window_handles:
        if handle != first:
            driver.switch_to.window(handle)
            driver.close()
    driver.switch_to.window(first)
