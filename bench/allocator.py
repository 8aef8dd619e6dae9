"""What keeping freed memory in glibc's heap buys a CPU training run (``core/ftx/allocator.py``).

For each of ``--plugins`` the same ``ftx run`` (first ``steps * batch`` demo rows) runs twice per
round in child processes: with ftx's allocator setting (the default: no ``mmap`` blocks, no heap
trimming) and with ``FTX_MALLOC=system`` (glibc's defaults: large blocks handed back to the kernel
on free, so every step's tensors are page-faulted and zeroed again). The order alternates from
round to round. Reported: training time, tokens/s, the child's peak RSS, page faults (minor,
from ``os.wait4``) and the final loss (identical: the allocator changes no arithmetic).
Results: ``bench/results/allocator.json``.

Usage::

    python bench/allocator.py [--plugins fft,sft,qlora] [--steps 12] [--batch 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from common import (
    bench_parser,
    cleanup,
    demo_data,
    demo_model,
    fmt_bytes,
    ftx_run_command,
    loadavg,
    log,
    markdown_table,
    ratio,
    read_json,
    require_ok,
    run_child,
    save_results,
    workdir,
    write_subset,
)

SIDES = {"ftx (heap kept)": {}, "glibc default": {"FTX_MALLOC": "system"}}


def run_once(plugin: str, side: str, args: argparse.Namespace, ctx: dict[str, Any]) -> dict:
    out = ctx["work"] / f"{plugin}-{'kept' if not SIDES[side] else 'system'}"
    cmd = ftx_run_command(
        plugin,
        model=ctx["model"],
        data=ctx["subset"],
        out=out,
        steps=args.steps,
        batch=args.batch,
        sets=[],
    )
    log(f"{plugin}: {side} (load {loadavg()[0]})")
    result = run_child(cmd, log_path=out.with_suffix(".log"), env=SIDES[side])
    require_ok(result, f"ftx run --plugin {plugin} ({side})")
    summary = read_json(out / "summary.json")
    return {
        **result,
        "train_time_s": summary.get("train_time_s"),
        "tokens_per_s": summary.get("tokens_per_s"),
        "final_loss": summary.get("final_loss"),
        "allocator": summary.get("allocator"),
    }


def main() -> None:
    parser = bench_parser(__doc__, quick="3 steps, 1 round", ignore=("eval-limit",))
    parser.add_argument("--plugins", default="fft,sft,qlora")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds = 3, 1
    work = workdir("allocator", args.workdir)
    train, _ = demo_data()
    ctx = {
        "work": work,
        "model": demo_model(),
        "subset": write_subset(train, args.steps * args.batch, work / "train.jsonl"),
    }
    names = list(SIDES)
    runs: dict[str, dict[str, list[dict]]] = {}
    rows = []
    for plugin in [p.strip() for p in args.plugins.split(",") if p.strip()]:
        runs[plugin] = {side: [] for side in names}
        for i in range(args.rounds):
            for side in names if i % 2 == 0 else names[::-1]:
                runs[plugin][side].append(run_once(plugin, side, args, ctx))

        def med(side: str, key: str, plugin: str = plugin) -> float:
            return statistics.median(r[key] for r in runs[plugin][side])

        ours, theirs = names
        for side in names:
            rows.append(
                [
                    plugin,
                    side,
                    med(side, "train_time_s"),
                    med(side, "tokens_per_s"),
                    ratio(med(side, "tokens_per_s"), med(theirs, "tokens_per_s")),
                    fmt_bytes(med(side, "peak_rss_bytes")),
                    int(med(side, "minor_page_faults")),
                    runs[plugin][side][0]["final_loss"],
                ]
            )
        log(
            f"{plugin}: train time {ratio(med(ours, 'train_time_s'), med(theirs, 'train_time_s'))}x"
        )
    text = markdown_table(
        [
            "plugin",
            "allocator",
            "train s (median)",
            "tokens/s",
            "tokens/s vs glibc default",
            "peak RSS",
            "minor page faults",
            "final loss",
        ],
        rows,
    )
    text = f"ftx run, {args.steps} steps × batch {args.batch}, {args.rounds} round(s)\n\n{text}"
    print(text)
    save_results(
        "allocator",
        {
            "settings": vars(args),
            "runs": runs,
            "tables_markdown": text,
        },
    )
    cleanup(work, args.workdir)


if __name__ == "__main__":
    main()
