"""``ftx ui``'s runs page, run page and live events on synthetic run directories: every status,
corrupt and half-written runs shown as unreadable (never a 500), stale runs, filters, and
several followers of one live run."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from ftx.runner.rundir import RunLock, lock_owner, lock_path_for
from ftx.testing.runs import write_run
from ftx.ui.runs import list_runs, progress
from tests.ui_helpers import client

EXPECTED = {
    "finished": "finished",
    "interrupted": "interrupted",
    "failed": "failed",
    "running": "stale",  # nobody holds its lock
    "corrupt-summary": "unreadable",
    "no-summary": "unreadable",
    "half-written": "unreadable",
    "no-config": "unreadable",
    "corrupt-config": "unreadable",
}


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "runs"
    for i, kind in enumerate(EXPECTED):
        write_run(root, kind, kind, plugin="qlora" if i % 2 else "sft", started=1000.0 + i)
    (root / "list.json").mkdir()
    (root / "list.json" / "summary.json").write_text("[1, 2]")  # JSON, but not a summary
    (root / "stray-file.txt").write_text("not a run")
    return root


def rows_of(page: str) -> dict[str, str]:
    return dict(re.findall(r'<tr class="run" data-run="([^"]+)" data-status="([^"]+)"', page))


def test_every_run_is_listed_with_its_status_newest_first(root):
    page = client(root).get("/runs")
    assert page.status_code == 200
    rows = rows_of(page.text)
    assert rows == {**EXPECTED, "list.json": "unreadable"}
    order = re.findall(r'<tr class="run" data-run="([^"]+)"', page.text)
    assert order[1:] == list(reversed(EXPECTED))  # newest first (list.json: now)
    assert "exact 0.100 → exact 0.900" in page.text  # held-out before → after
    assert "3.00 GiB" in page.text and "42.0 s" in page.text and "1234.5" in page.text


def test_filters_by_status_and_method(root):
    c = client(root)
    assert set(rows_of(c.get("/runs?status=unreadable").text).values()) == {"unreadable"}
    sft = rows_of(c.get("/runs?method=sft").text)
    assert sft and all(name in {k for i, k in enumerate(EXPECTED) if i % 2 == 0} for name in sft)
    assert rows_of(c.get("/runs?status=finished&method=qlora").text) == {}
    assert rows_of(c.get("/runs?status=finished&method=sft").text) == {"finished": "finished"}


@pytest.mark.parametrize("name", [*EXPECTED, "list.json"])
def test_every_run_page_renders_and_says_what_is_wrong(root, name):
    page = client(root).get(f"/runs/{name}")
    assert page.status_code == 200
    status = re.search(r'id="run-status"[^>]*>([^<]*)<', page.text).group(1)
    assert status == EXPECTED.get(name, "unreadable")
    if status == "unreadable":
        assert 'class="problem"' in page.text
    assert ('id="resume"' in page.text) == (status in ("interrupted", "failed", "stale"))
    assert ('id="chat-link"' in page.text) == (status == "finished")
    if name == "finished":  # started outside the UI: the log tail is its metrics.jsonl
        log = re.search(r'<pre id="log-tail">([^<]*)</pre>', page.text).group(1)
        assert log.splitlines()[-1].startswith("{&#34;step&#34;: 20, &#34;loss&#34;")


def test_a_run_whose_lock_is_held_is_running_and_stale_once_released(root):
    lock = RunLock(lock_path_for(root / "running"))
    lock.acquire(what=root / "running")
    try:
        assert lock_owner(root / "running") is not None
        assert {r.name: r.status for r in list_runs(root)}["running"] == "running"
        page = client(root).get("/runs/running").text
        assert 'id="stop"' in page and 'id="resume"' not in page
    finally:
        lock.release()
    assert lock_owner(root / "running") is None
    assert {r.name: r.status for r in list_runs(root)}["running"] == "stale"


def test_the_events_of_an_ended_run_stop_after_a_final_status(root):
    with client(root).stream("GET", "/runs/finished/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    kinds = re.findall(r"^event: (\w+)$", text, flags=re.M)
    assert kinds[-1] == "status" and {"progress", "loss", "heldout", "log"} <= set(kinds)
    last = json.loads(text.strip().splitlines()[-1].removeprefix("data: "))
    assert last == {"status": "finished", "problem": "", "final": True}


def test_progress_and_eta_from_the_metrics_rows():
    rows = [{"step": s, "loss": 1.0, "max_steps": 50, "time": 100.0 + 2 * s} for s in (1, 2, 3)]
    assert progress(rows) == {"step": 3, "max_steps": 50, "eta_s": 94.0}  # 2 s/step x 47
    assert progress([])["step"] == 0
    assert progress([{"step": 4, "loss": 1.0}]) == {"step": 4, "max_steps": None, "eta_s": None}
    odd = [*rows, {"step": "7", "loss": float("nan"), "max_steps": "x", "time": "y"}]
    assert progress(odd) == progress(rows)  # rows not as ftx writes them are skipped


def test_a_nan_loss_does_not_reach_the_browser(tmp_path):
    root = tmp_path / "runs"
    run = write_run(root, "nan", "failed", steps=3)
    with (run / "metrics.jsonl").open("a") as fh:
        fh.write(json.dumps({"step": 4, "loss": float("nan"), "max_steps": 20}) + "\n")
    page = client(root).get("/runs/nan").text
    data = re.search(r'id="run-data">([^<]*)<', page).group(1)

    def refuse(constant):  # what JSON.parse in the browser would do with NaN
        raise ValueError(constant)

    assert [p[0] for p in json.loads(data, parse_constant=refuse)["points"]] == [1, 2, 3]


def test_five_followers_of_one_live_run_all_see_it_progress_and_end(tmp_path):
    """A run in progress (its lock held here, metrics appended as a trainer would): five
    event streams at once each get the new steps, the held-out score and the final status."""
    root = tmp_path / "runs"
    run = write_run(root, "live", "running", steps=1, max_steps=6)
    lock = RunLock(lock_path_for(run))
    lock.acquire(what=run)
    c = client(root)
    c.app.state.settings.poll_s = 0.05
    seen: list[list[str]] = [[] for _ in range(5)]

    def follow(i: int) -> None:
        with c.stream("GET", "/runs/live/events") as stream:
            for line in stream.iter_lines():
                seen[i].append(line)

    followers = [threading.Thread(target=follow, args=(i,)) for i in range(5)]
    for f in followers:
        f.start()
    time.sleep(0.5)
    with (run / "metrics.jsonl").open("a") as fh:
        for step in range(2, 7):
            fh.write(json.dumps({"step": step, "loss": 1 / step, "max_steps": 6, "time": step}))
            fh.write("\n")
            fh.flush()
            time.sleep(0.15)
    summary = json.loads((run / "summary.json").read_text())
    summary.update(status="finished", eval_after={"metric": "exact", "score": 0.75, "n": 8})
    (run / "summary.json").write_text(json.dumps(summary))
    lock.release()
    for f in followers:
        f.join(timeout=30)
    assert not any(f.is_alive() for f in followers)
    for lines in seen:
        steps = [json.loads(x[6:])["step"] for x in lines if x.startswith('data: {"step"')]
        assert steps[0] == 1 and steps[-1] == 6 and len(steps) >= 2
        assert 'data: {"before": "exact 0.100", "after": "exact 0.750"}' in lines, "\n".join(lines)
        final = [x for x in lines if x][-1]
        assert final == 'data: {"status": "finished", "problem": "", "final": true}'


def test_the_log_tail_shows_a_progress_bar_as_a_terminal_would(tmp_path):
    from ftx.ui.launcher import log_path, log_tail

    root = tmp_path / "runs"
    log_path(root, "bar").parent.mkdir(parents=True)
    log_path(root, "bar").write_text("start\nload  10%\rload  50%\rload 100%\r\nstep 1/4\n")
    assert log_tail(root, "bar") == "start\nload 100%\nstep 1/4\n"


def test_an_ftx_compare_directory_opens_in_compare(tmp_path):
    """A compare directory in the root is not a run: its page says so and links to
    ``/compare?dir=NAME``, which shows its cells' report rows (cells outside the root are not
    read)."""
    root = tmp_path / "runs"
    write_run(root / "cmp", "fft", "finished", plugin="fft")
    write_run(root / "cmp" / "qlora", "r=8", "finished", plugin="qlora")
    write_run(tmp_path, "outside", "finished")
    cells = [
        {"name": "fft", "plugin": "fft", "group": "fft"},
        {"name": "qlora/r=8", "plugin": "qlora", "group": "qlora r=8", "grid": {"r": 8}},
        {"name": "../../outside", "plugin": "sft"},
    ]
    spec = {"ftx_compare": 1, "plugins": ["fft", "qlora"], "cells": cells}
    (root / "cmp" / "compare.json").write_text(json.dumps(spec))
    c = client(root)
    page = c.get("/runs/cmp").text
    assert "an ftx compare directory" in page and 'href="/compare?dir=cmp"' in page
    shown = c.get("/compare?dir=cmp").text
    found = re.findall(r'<tr class="compare-row" data-run="([^"]+)">', shown)
    assert found == ["cmp/fft", "cmp/qlora/r=8"]
    curves = json.loads(re.search(r'id="compare-data">([^<]*)<', shown).group(1))
    assert sorted(curves) == found and len(curves["cmp/fft"]) == 20
