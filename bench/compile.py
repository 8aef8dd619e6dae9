"""torch.compile on each method's training step: compile time, the compiled step, and whether
the whole run gets faster at the demo's 60 steps and at 600.

For each plugin (default fft, sft, qlora) two ``ftx run``s on the demo rows, one after the other
in child processes with ftx's settings for this machine: eager, and with
``train.torch_compile=true`` (the Trainer wraps the model in ``torch.compile``: inductor's CPU
backend, default mode). Each logs every step (``metrics.jsonl`` holds a wall-clock time per
step), so per run:

* **steady step**: the median of the second half of the step intervals (recompilation for new
  sequence lengths is over by then, or the run says it was not: see ``slow steps``);
* **start-up cost**: the training time beyond ``steps x steady`` (for the compiled run: tracing,
  inductor's code generation and the recompiles when a new batch shape arrives);
* **projected 60 / 600 steps**: start-up cost + N x steady step, eager and compiled, and their
  ratio (< 1: compiling pays at that length).

A run that fails (a graph break inductor cannot handle, e.g. bitsandbytes' 4-bit layers) is
reported as such, with the last line of its log. The projections assume the steady step holds
(the demo's rows are all alike in length); a run of 600 steps is not made.

Usage::

    python bench/compile.py [--plugins fft,sft,qlora] [--steps 16] [--batch 8] [--quick] [--tag T]

Results: ``bench/results/compile.json`` (``--tag`` adds a suffix).
"""

from __future__ import annotations

import itertools
import json
import statistics
from pathlib import Path
from typing import Any

import common

LENGTHS = (60, 600)


def step_intervals(metrics: Path) -> list[float]:
    """Seconds between consecutive logged steps (``metrics.jsonl``, one line per step)."""
    times = [
        row["time"]
        for row in map(json.loads, metrics.read_text().splitlines())
        if "loss" in row and "time" in row
    ]
    return [b - a for a, b in itertools.pairwise(times)]


def timing(run_dir: Path) -> dict[str, Any]:
    """Steady step, start-up cost and the projections of one finished run."""
    summary = common.read_json(run_dir / "summary.json")
    intervals = step_intervals(run_dir / "metrics.jsonl")
    steady = statistics.median(intervals[len(intervals) // 2 :])
    steps = int(summary["steps"])
    train_s = float(summary["train_time_s"])
    startup = max(train_s - steps * steady, 0.0)
    return {
        "steps": steps,
        "train_s": round(train_s, 2),
        "steady_step_s": round(steady, 3),
        "startup_s": round(startup, 1),
        "slow_steps": sum(1 for t in intervals if t > 3 * steady),
        "projected_s": {str(n): round(startup + n * steady, 1) for n in LENGTHS},
    }


def main() -> None:
    parser = common.bench_parser(__doc__, quick="6 steps, sft only", ignore=("eval-limit",))
    parser.add_argument("--plugins", default="fft,sft,qlora")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workdir")
    parser.add_argument("--tag", default="", help="suffix for the results file name")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.plugins = 6, "sft"
    work = common.workdir("compile", args.workdir)
    model = common.demo_model()
    data = common.write_subset(common.demo_data()[0], args.steps * args.batch, work / "train.jsonl")
    info = common.machine()
    common.log(f"CPU: {common.cpu_label(info)}, load {common.loadavg()}")
    results: dict[str, Any] = {}
    rows = []
    for plugin in [p.strip() for p in args.plugins.split(",") if p.strip()]:
        per_mode: dict[str, Any] = {}
        for mode, compiled in (("eager", "false"), ("compiled", "true")):
            out = work / f"{plugin}-{mode}"
            sets = ["train.logging_steps=1", "train.eval_strategy=no"]
            sets += [f"train.torch_compile={compiled}", "train.save_strategy=no"]
            cmd = common.ftx_run_command(
                plugin,
                model=model,
                data=data,
                out=out,
                steps=args.steps,
                batch=args.batch,
                sets=sets,
            )
            common.log(f"{plugin} {mode}")
            result = common.run_child(cmd, log_path=work / f"{plugin}-{mode}.log")
            if result["rc"] != 0:
                tail = Path(result["log"]).read_text().strip().splitlines()[-1:]
                per_mode[mode] = {"failed": result["rc"], "log_tail": tail}
                continue
            per_mode[mode] = {**timing(out), "wall_s": result["wall_s"]}
            per_mode[mode]["peak_rss_bytes"] = result["peak_rss_bytes"]
        results[plugin] = per_mode
        rows.append(table_row(plugin, per_mode))
    headers = ["method", "eager step s", "compiled step s", "step ratio", "compile start-up s"]
    headers += [f"{n} steps: compiled / eager" for n in LENGTHS]
    text = "\n".join(
        [
            f"CPU: {common.cpu_label(info)}; {args.steps} steps of batch {args.batch} each",
            "",
            common.markdown_table(headers, rows),
        ]
    )
    print(text)
    common.save_results(
        f"compile{args.tag}", {"settings": vars(args), "plugins": results, "table_markdown": text}
    )
    common.cleanup(work, args.workdir)


def table_row(plugin: str, per_mode: dict[str, Any]) -> list[Any]:
    eager, compiled = per_mode["eager"], per_mode["compiled"]
    if "failed" in eager or "failed" in compiled:
        failed = "eager" if "failed" in eager else "compiled"
        reason = " ".join(per_mode[failed]["log_tail"])[:80]
        return [plugin, eager.get("steady_step_s"), f"failed: {reason}", "", "", "", ""]
    ratios = [
        common.ratio(compiled["projected_s"][str(n)], eager["projected_s"][str(n)]) for n in LENGTHS
    ]
    return [
        plugin,
        eager["steady_step_s"],
        compiled["steady_step_s"],
        common.ratio(compiled["steady_step_s"], eager["steady_step_s"]),
        round(compiled["startup_s"] - eager["startup_s"], 1),
        *ratios,
    ]


if __name__ == "__main__":
    main()
