"""Start-up time of the ``ftx`` commands that must stay fast, against ``import torch``.

Measures the wall time of ``ftx --help``, ``ftx run --help``, ``ftx plugins``,
``ftx plugins show qlora`` (the installed console script, as a user types it) and, for
reference, ``trl --help`` and ``trl sft --help``, each divided by the time of
``python -c "import torch"``. Goal: every ftx command ≤ 0.15× ``import torch``.

Each command runs ``--repeats`` times (default 7) in fresh processes after one unmeasured warm-up
run; the rounds are interleaved (every command once per round, the order rotating from round to
round) so that a burst of load from other processes hits all commands alike. The table reports
the median and the ratio of medians. Results: ``bench/results/startup.json``.

Usage::

    python bench/startup.py [--repeats 7] [--quick]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from common import (
    MAIN_DISTS,
    MAIN_PY,
    bench_parser,
    loadavg,
    log,
    markdown_table,
    package_versions,
    save_results,
)

BIN = MAIN_PY.parent


def commands() -> dict[str, list[str]]:
    ftx = str(BIN / "ftx") if (BIN / "ftx").exists() else shutil.which("ftx") or "ftx"
    cmds = {
        'python -c "import torch"': [str(MAIN_PY), "-c", "import torch"],
        "ftx --help": [ftx, "--help"],
        "ftx run --help": [ftx, "run", "--help"],
        "ftx plugins": [ftx, "plugins"],
        "ftx plugins show qlora": [ftx, "plugins", "show", "qlora"],
    }
    trl = BIN / "trl"
    if trl.exists():
        cmds["trl --help"] = [str(trl), "--help"]
        cmds["trl sft --help"] = [str(trl), "sft", "--help"]
    return cmds


def time_once(cmd: list[str]) -> float:
    # COLUMNS fixes rich's table width; the output itself is discarded.
    env = {**os.environ, "COLUMNS": "100"}
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.decode()[-2000:]}")
    return elapsed


def main() -> None:
    parser = bench_parser(__doc__, quick="3 repeats", ignore=("steps", "batch", "eval-limit"))
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    cmds = commands()
    names = list(cmds)
    load_start = loadavg()
    for name in names:  # warm the page cache
        time_once(cmds[name])
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeats):
        rotated = names[i % len(names) :] + names[: i % len(names)]
        for name in rotated:
            times[name].append(time_once(cmds[name]))
        log(f"round {i + 1}/{repeats} done (load {loadavg()[0]})")
    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians['python -c "import torch"']
    rows = []
    for name in names:
        goal = "≤ 0.15" if name.startswith("ftx") else ""
        r = medians[name] / base
        met = ("yes" if r <= 0.15 else "no") if goal else ""
        rows.append(
            [name, round(medians[name] * 1000), round(min(times[name]) * 1000), round(r, 3), met]
        )
    text = markdown_table(
        ["command", "median ms", "min ms", "ratio to import torch", "goal ≤ 0.15× met"], rows
    )
    print(text)
    save_results(
        "startup",
        {
            "repeats": repeats,
            "times_s": times,
            "median_s": medians,
            "ratios": {name: round(medians[name] / base, 4) for name in names},
            "load_average_start": load_start,
            "load_average_end": loadavg(),
            "versions": package_versions(MAIN_PY, (*MAIN_DISTS, "click", "rich", "pluggy")),
            "cwd": str(Path.cwd()),
            "tables_markdown": text,
        },
    )


if __name__ == "__main__":
    main()
