"""A person's way through ``ftx ui`` in Chromium: a new sft run from the form (``layers`` set to
``last:1``) followed live in five tabs until its held-out scores appear, the runs list, compare
with a second run (started from the CLI), and a chat with the result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.browser.pages import (
    RECORD_JS,
    all_css,
    by_css,
    choose,
    fill,
    open_new_run,
    run_form_fields,
    text,
    wait,
)

pytestmark = pytest.mark.browser

FORM_RUN = "sft-from-form"
CLI_RUN = "fft-from-cli"
TABS = 5
RUN_TIMEOUT = 240


@pytest.fixture(scope="module")
def cli_run(runs_root: Path, ui_url: str, ftx_tiny_model: Path, ftx_tiny_data: dict):
    """A second run, fft, started from the command line in the background (the UI lists every
    run directory under its root, whoever started it). Yields its process."""
    from tests.test_run_tiny import run_args

    argv = run_args("fft", str(ftx_tiny_model), ftx_tiny_data, str(runs_root / CLI_RUN))
    log = open(runs_root.parent / f"{CLI_RUN}.log", "w", encoding="utf-8")  # noqa: SIM115
    with log:
        proc = subprocess.Popen([sys.executable, "-m", "ftx", *argv], stdout=log, stderr=log)
        yield proc
        proc.wait(timeout=RUN_TIMEOUT)


@pytest.fixture(scope="module")
def live(driver: Any, ui_url: str, cli_run: Any, ftx_tiny_model: Path, ftx_tiny_data: dict):
    """Fill the new-run form (sft, ``method.layers`` = ``last:1``), submit, keep the live page
    open in five tabs until the run finishes. Returns what was seen: the command shown before
    submitting, the URL landed on, and per tab the recorded status/step history."""
    open_new_run(driver, ui_url, "sft")
    choose(driver, "select#objective", "supervised")
    fill(driver, run_form_fields(ftx_tiny_model, ftx_tiny_data, FORM_RUN))
    fill(driver, {"method-layers": "last:1"})
    shown = wait(driver, lambda d: "last:1" in text(d, "pre#command") and text(d, "pre#command"))
    command = str(shown)
    by_css(driver, "button#submit").click()
    page = f"{ui_url}/runs/{FORM_RUN}"
    wait(driver, lambda d: d.current_url == page, message=f"submit did not open {page}")
    launched = text(driver, "pre#run-command")
    tabs = [driver.current_window_handle]
    driver.execute_script(RECORD_JS)
    for _ in range(TABS - 1):
        driver.switch_to.new_window("tab")
        driver.get(page)
        driver.execute_script(RECORD_JS)
        tabs.append(driver.current_window_handle)

    def finished_everywhere(d: Any) -> bool:
        for tab in tabs:
            d.switch_to.window(tab)
            if text(d, "#run-status") not in ("finished", "failed", "interrupted"):
                return False
        return True

    wait(driver, finished_everywhere, RUN_TIMEOUT, f"{FORM_RUN} did not finish in every tab")
    seen = []
    for tab in tabs:
        driver.switch_to.window(tab)
        seen.append(
            {
                "marker": driver.execute_script("return window.ftxMarker"),
                "history": driver.execute_script("return window.ftxSeen"),
                "step": text(driver, "#run-step"),
                "after": text(driver, "#heldout-after"),
            }
        )
    for tab in tabs[1:]:
        driver.switch_to.window(tab)
        driver.close()
    driver.switch_to.window(tabs[0])
    return {"command": command, "launched": launched, "tabs": seen, "page": page}


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def test_submit_shows_the_exact_command_and_opens_the_live_page(live, runs_root):
    assert "ftx run" in live["command"] and "--plugin sft" in live["command"]
    assert "method.layers=last:1" in live["command"]
    assert str(runs_root / FORM_RUN) in live["command"]
    assert live["launched"] == live["command"]
    run = summary(runs_root / FORM_RUN)
    assert run["status"] == "finished", (runs_root / ".ui" / f"{FORM_RUN}.log").read_text()
    config = (runs_root / FORM_RUN / "config.yaml").read_text()
    assert "last:1" in config


def test_five_tabs_follow_the_live_run_without_reloading(live):
    assert len(live["tabs"]) == TABS
    for tab in live["tabs"]:
        assert tab["marker"] == "no reload"
        statuses = tab["history"]["status"]
        assert statuses[0] != "finished" and statuses[-1] == "finished", statuses
        assert tab["step"] == "40 / 40"
        steps = [int(s.split("/")[0]) for s in tab["history"]["step"] if "/" in s]
        assert steps == sorted(steps) and steps[-1] == 40, tab["history"]["step"]


def test_heldout_scores_appear_as_the_run_recorded_them(live, driver, runs_root):
    run = summary(runs_root / FORM_RUN)
    after = f"{run['eval_after']['score']:.3f}"
    for tab in live["tabs"]:
        assert after in tab["after"], tab["after"]
    driver.get(live["page"])
    assert f"{run['eval_before']['score']:.3f}" in text(driver, "#heldout-before")
    assert after in text(driver, "#heldout-after")
    assert all_css(driver, "#loss-curve path, #loss-curve polyline")


def test_runs_page_lists_both_runs_and_filters_by_method(live, cli_run, browser, ui_url):
    assert cli_run.wait(timeout=RUN_TIMEOUT) == 0
    browser.get(f"{ui_url}/runs")
    rows = {
        r.get_attribute("data-run"): r.get_attribute("data-status")
        for r in all_css(browser, "table#runs tr.run")
    }
    assert rows == {FORM_RUN: "finished", CLI_RUN: "finished"}
    choose(browser, "select#filter-method", "sft")
    by_css(browser, "button#filter-apply").click()
    wait(browser, lambda d: "method=sft" in d.current_url)
    assert [r.get_attribute("data-run") for r in all_css(browser, "tr.run")] == [FORM_RUN]
    by_css(browser, f'tr.run[data-run="{FORM_RUN}"] a.run-link').click()
    wait(browser, lambda d: d.current_url.endswith(f"/runs/{FORM_RUN}"))


def test_compare_two_runs(live, cli_run, browser, ui_url, runs_root):
    assert cli_run.wait(timeout=RUN_TIMEOUT) == 0
    browser.get(ui_url)
    by_css(browser, "#nav-compare").click()
    wait(browser, lambda d: d.find_elements("css selector", "form#compare-pick"))
    for name in (FORM_RUN, CLI_RUN):
        box = by_css(browser, f'input.compare-run[value="{name}"]')
        if not box.is_selected():
            box.click()
    by_css(browser, "button#compare-submit").click()
    wait(browser, lambda d: len(all_css(d, "tr.compare-row")) == 2, message="no compare rows")
    rows = {r.get_attribute("data-run"): r.text for r in all_css(browser, "tr.compare-row")}
    assert set(rows) == {FORM_RUN, CLI_RUN}
    for name, row in rows.items():
        run = summary(runs_root / name)
        assert f"{run['trainable_params']:,}" in row or str(run["trainable_params"]) in row, row
    assert len(all_css(browser, "#loss-overlay path")) >= 2


def test_chat_streams_the_trained_models_answer(live, browser, ui_url, runs_root):
    from ftx.results import RunResult
    from ftx.ui.pages_try import MAX_NEW_TOKENS

    browser.get(live["page"])
    by_css(browser, "a#chat-link").click()
    wait(browser, lambda d: d.current_url.endswith(f"/runs/{FORM_RUN}/chat"))
    message = "reverse: blue apple green"
    by_css(browser, "textarea#chat-input").send_keys(message)
    by_css(browser, "button#chat-send").click()
    wait(browser, lambda d: all_css(d, "#chat-log .msg.assistant.done"), 120, "no answer")
    assert [m.text for m in all_css(browser, "#chat-log .msg.user")] == [message]
    answer = all_css(browser, "#chat-log .msg.assistant.done")[-1].text.strip()
    expected = RunResult(runs_root / FORM_RUN).chat(message, max_new_tokens=MAX_NEW_TOKENS)
    assert answer and answer == expected


def test_eval_scores_a_heldout_file_as_ftx_eval_does(live, browser, runs_root, ftx_tiny_data):
    from selenium.webdriver.support.ui import Select

    from ftx.results import RunResult

    browser.get(live["page"])
    by_css(browser, "a#eval-link").click()
    wait(browser, lambda d: d.current_url.endswith(f"/runs/{FORM_RUN}/eval"))
    fill_box = by_css(browser, "input#eval-data")
    fill_box.clear()
    fill_box.send_keys(str(ftx_tiny_data["eval"]))
    Select(by_css(browser, "select#eval-metric")).select_by_value("exact")
    by_css(browser, "button#eval-submit").click()
    shown = json.loads(wait(browser, lambda d: text(d, "pre#eval-result"), 120, "no result"))
    expected = RunResult(runs_root / FORM_RUN).eval(ftx_tiny_data["eval"], metric="exact")
    assert (shown["metric"], shown["score"], shown["n"]) == ("exact", expected["score"], 6)
