"""How fast ``ftx ui``'s runs page answers with many run directories.

Writes ``--runs`` synthetic run directories (default 500, :func:`ftx.testing.runs.write_run`:
every status, and every 25th one broken: a corrupt ``summary.json``, a missing one, a copy cut
short, a missing or corrupt ``config.yaml``) and times ``GET /runs`` through the app
(Starlette's test client, no network): **cold**, the first request of a fresh process (every
file parsed), then **warm**, the median of ``--repeats`` more (files unchanged since: the
parse cache answers, one ``stat`` per file), and a filtered page. Prints the table; asserts
only that the broken runs show as ``unreadable``.

Usage::

    python bench/ui_runs.py [--runs 500] [--repeats 7]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

from ftx.testing.runs import write_run

GOOD = ("finished", "finished", "finished", "interrupted", "failed", "running")
BROKEN = ("corrupt-summary", "no-summary", "half-written", "no-config", "corrupt-config")


def generate(root: Path, count: int) -> int:
    """``count`` runs under ``root``; returns how many are broken."""
    broken = 0
    for i in range(count):
        if i % 25 == 24:
            kind = BROKEN[broken % len(BROKEN)]
            broken += 1
        else:
            kind = GOOD[i % len(GOOD)]
        plugin = ("fft", "sft", "qlora")[i % 3]
        write_run(root, f"{plugin}-{i:04d}", kind, plugin=plugin, steps=60, started=1e9 + i)
    return broken


def timed(client, url: str) -> tuple[float, str]:
    start = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.status_code
    return elapsed, response.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    from starlette.testclient import TestClient

    from ftx.ui.app import create_app

    with tempfile.TemporaryDirectory(prefix="ftx-ui-bench-") as tmp:
        root = Path(tmp) / "runs"
        started = time.perf_counter()
        broken = generate(root, args.runs)
        written = time.perf_counter() - started
        client = TestClient(create_app(root), base_url="http://127.0.0.1")
        cold, page = timed(client, "/runs")
        statuses = re.findall(r'data-status="(\w+)"', page)
        assert len(statuses) == args.runs, len(statuses)
        assert statuses.count("unreadable") == broken, statuses.count("unreadable")
        warm = [timed(client, "/runs")[0] for _ in range(args.repeats)]
        filtered = [timed(client, "/runs?status=finished&method=sft")[0] for _ in range(3)]
        one = [timed(client, "/runs/sft-0001")[0] for _ in range(3)]

    print(f"{args.runs} run directories ({broken} broken) written in {written:.1f} s")
    print(f"{'request':<42} {'time':>9}")
    print(f"{'GET /runs, cold (every file parsed)':<42} {cold * 1000:>7.0f} ms")
    print(
        f"{'GET /runs, warm (median of ' + str(args.repeats) + ')':<42} "
        f"{statistics.median(warm) * 1000:>7.0f} ms"
    )
    print(
        f"{'GET /runs?status=finished&method=sft':<42} "
        f"{statistics.median(filtered) * 1000:>7.0f} ms"
    )
    print(f"{'GET /runs/NAME (one run page)':<42} {statistics.median(one) * 1000:>7.0f} ms")
    print(f"unreadable shown: {statuses.count('unreadable')} of {broken} broken")


if __name__ == "__main__":
    main()
