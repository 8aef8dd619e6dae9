"""The training budget, measured: one fixed epoch against ftx's default (up to 3 epochs with
held-out evaluation, the best checkpoint and early stopping), per method, on two tasks.

For each task — the demo (coffee orders -> order code, 480 rows, 80 held out) and the harder
multi-turn task of ``scripts/make_multiturn_data.py`` (320 conversations, 40 held out; the
code depends on details from several earlier turns) — and each method (fft, sft, qlora, at
their default learning rates), two ``ftx run``s of SmolLM2-135M-Instruct, one after the other:

* ``1 epoch``: ``train.num_train_epochs=1``, ``train.eval_strategy=no`` (ftx's earlier default:
  no evaluation during training, ``model/`` from the last step);
* ``default``: nothing set: up to 3 epochs, evaluation every eighth of the run, ``model/`` from
  the best checkpoint by ``train.select_best`` (its default), early stopping (patience 2).

Each row: held-out exact match of the exported ``model/`` on every held-out row (as
``ftx run`` scores it after training), steps trained of those planned, the exported step, the
wall time of the whole ``ftx run`` (scoring before/after included) and the CPU time of its
process. Printed as a markdown table with the CPU model and load averages (a shared machine
slows every run: compare wall times within one run of this script only). Results:
``bench/results/eval_budget.json``.

Usage::

    python bench/eval_budget.py [--tasks demo,multiturn] [--methods fft,sft,qlora]
        [--budgets 1epoch,default] [--quick]   # --quick: qlora on the multi-turn task only
        [--results NAME]                       # bench/results/NAME.json (default eval_budget)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BENCH,
    FTX,
    bench_parser,
    cpu_label,
    demo_data,
    loadavg,
    log,
    machine,
    markdown_table,
    read_json,
    run_child,
    save_results,
)

MULTITURN = BENCH / "data" / "multiturn"
BUDGETS = {
    "1epoch": ["train.num_train_epochs=1", "train.eval_strategy=no"],
    "default": [],
}


def tasks() -> dict[str, tuple[Path, Path]]:
    return {
        "demo": demo_data(),
        "multiturn": (MULTITURN / "train.jsonl", MULTITURN / "heldout.jsonl"),
    }


def one_run(task: str, method: str, budget: str, work: Path) -> dict:
    train, heldout = tasks()[task]
    out = work / f"{task}-{method}-{budget}"
    sets = [f"data.eval={heldout}", *BUDGETS[budget]]
    cmd = [*FTX, "run", "--plugin", method, "--data", str(train), "--output", str(out)]
    cmd += [f"--set={s}" for s in sets] + ["--overwrite"]
    log(f"{task} × {method} × {budget}")
    result = run_child(cmd, log_path=work / f"{out.name}.log")
    summary = read_json(out / "summary.json")
    best, stopped = summary.get("best") or {}, summary.get("stopped_early") or {}
    return {
        "task": task,
        "method": method,
        "budget": budget,
        "rc": result["rc"],
        "exact": (summary.get("eval_after") or {}).get("score"),
        "before": (summary.get("eval_before") or {}).get("score"),
        "steps": summary.get("steps"),
        "max_steps": summary.get("max_steps"),
        "best_step": best.get("step"),
        "stopped_early": stopped.get("step"),
        "task_metric_s": (summary.get("evaluation") or {}).get("task_metric_seconds"),
        "wall_s": round(result["wall_s"], 1),
        "cpu_s": round(result["cpu_user_s"] + result["cpu_sys_s"], 1),
        "load": [result["load_before"], result["load_after"]],
    }


def main() -> None:
    parser = bench_parser(__doc__, quick="qlora on the multi-turn task only")
    parser.add_argument("--tasks", default="demo,multiturn")
    parser.add_argument("--methods", default="fft,sft,qlora")
    parser.add_argument("--budgets", default="1epoch,default")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ftx-eval-budget"))
    parser.add_argument("--results", default="eval_budget", help="bench/results/NAME.json")
    args = parser.parse_args()
    names = ["multiturn"] if args.quick else args.tasks.split(",")
    methods = ["qlora"] if args.quick else args.methods.split(",")
    info = machine()
    log(f"CPU: {cpu_label(info)}, load {loadavg()}")
    rows = [
        one_run(task, method, budget, args.work)
        for task in names
        for method in methods
        for budget in args.budgets.split(",")
    ]
    headers = ["task", "method", "budget", "held-out exact", "steps (planned)", "exported step"]
    headers += ["wall s", "CPU s"]
    columns = ("task", "method", "budget", "exact", "planned", "best_step", "wall_s", "cpu_s")
    for r in rows:
        r["planned"] = f"{r['steps']} ({r['max_steps']})"
    table = [[r[c] for c in columns] for r in rows]
    print(f"CPU: {cpu_label(info)}; load {loadavg()}")
    print(markdown_table(headers, table))
    save_results(args.results, {"machine": info, "runs": rows})
    if any(r["rc"] != 0 for r in rows):
        sys.exit(json.dumps([r for r in rows if r["rc"] != 0], indent=1))


if __name__ == "__main__":
    main()
