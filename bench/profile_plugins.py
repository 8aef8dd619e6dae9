"""Profile the CPU path of each method plugin: where an ``ftx run`` spends its time.

For each plugin (default fft, sft, qlora) one short ``ftx run`` (``--steps`` steps, batch
``--batch``, the first ``steps * batch`` demo rows, no held-out scoring) runs in a child process
that wraps ftx's own functions with timers, without changing them:

* **phases** of the whole command: imports + validation (``prepare``), tokeniser load,
  tokenisation, each hook (``load_model``, ``select_trainable``, ``build_trainer``,
  ``export``), ``trainer.train``, the report (``loss.png``/``report.md``);
* **operators**: ``torch.profiler`` over ``--profile-steps`` training steps after ``--warmup``
  warm-up steps; the top operators by self CPU time (``key_averages``), and the share of the
  step spent in the LM head + cross-entropy, in attention, in bitsandbytes 4-bit kernels and in
  the optimizer.

With ``--py-spy`` (needs ``py-spy``, e.g. ``bench/.venv-tools/bin/py-spy``) the child runs under
``py-spy record`` as well and the top Python functions by sampled self time are listed.

Usage::

    python bench/profile_plugins.py [--plugins fft,sft,qlora] [--steps 6] [--batch 8] [--quick]
        [--set section.key=value ...] [--data ROWS.jsonl]

Results: ``bench/results/profile_plugins.json``; the raw profiler tables go to the work dir.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

# Operator-name fragments that classify a profiled op (matched against the op name, lowercase).
CATEGORIES = {
    "bitsandbytes 4-bit": ("bitsandbytes", "dequantize", "gemv_4bit", "matmul_4bit", "bnb"),
    "attention (sdpa)": ("scaled_dot_product", "flash_attention", "_efficient_attention"),
    "cross-entropy / log-softmax": ("log_softmax", "nll_loss", "cross_entropy"),
    "optimizer": ("optimizer.step", "adamw", "_fused_adam", "foreach"),
    "matmul (linear)": ("aten::mm", "aten::addmm", "aten::bmm", "aten::linear", "aten::matmul"),
    "dtype casts": ("aten::to", "aten::_to_copy", "aten::copy_"),
}


def worker(out_json: str, warmup: int, profile_steps: int, argv: list[str]) -> None:
    """Child: run ``ftx run argv`` with timers and a torch.profiler window around some steps."""
    # Before torch loads, as the ftx command does: OMP_WAIT_POLICY and HF_HUB_OFFLINE.
    from ftx.process_env import configure_command_process

    configure_command_process()

    started = time.perf_counter()
    phases: dict[str, float] = {}
    memory: dict[str, dict[str, float]] = {}
    report: dict[str, Any] = {"phases_s": phases, "memory_gib": memory}

    def timed(module: Any, name: str, label: str | None = None) -> None:
        original = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                key = label or name
                if key == "call_first":
                    key = f"hook {args[1]}"
                phases[key] = phases.get(key, 0.0) + time.perf_counter() - t0
                memory[key] = proc_memory()

        setattr(module, name, wrapper)

    import ftx.data
    import ftx.models
    import ftx.report
    import ftx.runner
    import ftx.runner.execution

    timed(ftx.runner, "prepare", "prepare (imports, validation, data read)")
    timed(ftx.runner.execution, "call_first")
    timed(ftx.data, "tokenize_dataset")
    timed(ftx.models, "load_tokenizer")
    timed(ftx.models, "resolve_model")
    timed(ftx.report, "write_reports")
    timed(ftx.runner.execution, "quiet_libraries", "quiet_libraries (imports transformers)")

    original_build = ftx.runner.execution.build_trainer

    def build(*args: Any, **kwargs: Any) -> Any:
        built = original_build(*args, **kwargs)
        trainer = built.trainer
        trainer.add_callback(profiler_callback(warmup, profile_steps, report))
        train = trainer.train

        def timed_train(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return train(*a, **k)
            finally:
                phases["trainer.train"] = time.perf_counter() - t0
                memory["trainer.train"] = proc_memory()

        trainer.train = timed_train
        return built

    ftx.runner.execution.build_trainer = build
    from ftx.cli import cli

    try:
        cli(["run", *argv], prog_name="ftx", standalone_mode=False)
    finally:
        report["total_s"] = time.perf_counter() - started
        Path(out_json).write_text(json.dumps(report, indent=2))


def proc_memory() -> dict[str, float]:
    """This process's resident memory now (VmRSS) and its peak so far (VmHWM), in GiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 2**20, 3)
    return {"rss_after": out.get("VmRSS", 0.0), "peak_so_far": out.get("VmHWM", 0.0)}


def profiler_callback(warmup: int, steps: int, report: dict[str, Any]) -> Any:
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback

    class Profile(TrainerCallback):
        def __init__(self) -> None:
            self.prof = None
            self.t0 = 0.0
            self.step_times: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == warmup and self.prof is None:
                self.prof = profile(activities=[ProfilerActivity.CPU], record_shapes=True)
                self.prof.__enter__()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.step_times.append(time.perf_counter() - self.t0)
            if self.prof is not None and state.global_step == warmup + steps:
                self.prof.__exit__(None, None, None)
                averages = self.prof.key_averages()
                report["profiled_steps"] = steps
                report["step_times_s"] = [round(t, 3) for t in self.step_times]
                report["ops"] = [
                    {
                        "name": e.key,
                        "self_cpu_s": e.self_cpu_time_total / 1e6,
                        "cpu_total_s": e.cpu_time_total / 1e6,
                        "calls": e.count,
                    }
                    for e in sorted(averages, key=lambda e: -e.self_cpu_time_total)[:60]
                ]
                report["ops_table"] = averages.table(sort_by="self_cpu_time_total", row_limit=25)
                report["ops_by_shape_table"] = self.prof.key_averages(
                    group_by_input_shape=True
                ).table(sort_by="self_cpu_time_total", row_limit=60)
                report["torch_threads"] = torch.get_num_threads()
                self.prof = None

    return Profile()


def categorise(ops: list[dict[str, Any]]) -> dict[str, float]:
    total = sum(op["self_cpu_s"] for op in ops) or 1.0
    shares: Counter[str] = Counter()
    for op in ops:
        name = op["name"].lower()
        for category, needles in CATEGORIES.items():
            if any(n in name for n in needles):
                shares[category] += op["self_cpu_s"] / total
                break
        else:
            shares["other"] += op["self_cpu_s"] / total
    return {k: round(v, 3) for k, v in shares.most_common()}


def py_spy_top(raw: Path, limit: int = 20) -> list[tuple[str, float]]:
    """Top functions by self samples from py-spy's ``--format raw`` (collapsed stacks)."""
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        counts[stack.split(";")[-1]] += int(n)
    return [(frame, round(c / max(total, 1), 3)) for frame, c in counts.most_common(limit)]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])
        return
    from common import (
        BENCH,
        MAIN_PY,
        bench_parser,
        cleanup,
        demo_data,
        demo_model,
        loadavg,
        log,
        markdown_table,
        prune_checkpoints,
        require_ok,
        run_child,
        save_results,
        workdir,
        write_subset,
    )

    parser = bench_parser(__doc__, quick="4 steps, 1 profiled", ignore=("eval-limit",))
    parser.add_argument("--plugins", default="fft,sft,qlora")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--profile-steps", type=int, default=3)
    parser.add_argument("--py-spy", action="store_true", help="also sample with py-spy")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--data", help="training rows to profile on (default: the demo rows)")
    parser.add_argument("--workdir")
    parser.add_argument("--tag", default="", help="suffix for the results file name")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup, args.profile_steps = 4, 2, 1
    args.steps = max(args.steps, args.warmup + args.profile_steps)
    work = workdir("profile", args.workdir)
    model = demo_model()
    train = Path(args.data) if args.data else demo_data()[0]
    subset = write_subset(train, args.steps * args.batch, work / "train.jsonl")
    py_spy = shutil.which("py-spy") or str(BENCH / ".venv-tools" / "bin" / "py-spy")
    results: dict[str, Any] = {}
    load_start = loadavg()
    for plugin in [p.strip() for p in args.plugins.split(",") if p.strip()]:
        out_json = work / f"{plugin}.json"
        run_args = [
            "--plugin",
            plugin,
            "--model",
            str(model),
            "--data",
            str(subset),
            "--output",
            str(work / plugin),
            "--overwrite",
            "--set",
            f"train.max_steps={args.steps}",
            "--set",
            f"train.per_device_train_batch_size={args.batch}",
            *[x for s in args.sets for x in ("--set", s)],
        ]
        cmd = [
            str(MAIN_PY),
            __file__,
            "--worker",
            str(out_json),
            str(args.warmup),
            str(args.profile_steps),
            *run_args,
        ]
        raw = work / f"{plugin}.pyspy.txt"
        if args.py_spy and Path(py_spy).exists():
            cmd = [py_spy, "record", "--format", "raw", "--rate", "20", "-o", str(raw), "--", *cmd]
        log(f"profiling {plugin} (load {loadavg()[0]})")
        env = {"OMP_WAIT_POLICY": ""}
        result = run_child(cmd, log_path=work / f"{plugin}.log", env=env)
        require_ok(result, f"profile {plugin}")
        prune_checkpoints(work / plugin)
        data = json.loads(out_json.read_text())
        data["categories"] = categorise(data.get("ops", []))
        data["peak_rss_bytes"] = result["peak_rss_bytes"]
        data["wall_s"] = result["wall_s"]
        if raw.exists():
            data["py_spy_top_self"] = py_spy_top(raw)
        (work / f"{plugin}.ops.txt").write_text(data.pop("ops_table", ""))
        (work / f"{plugin}.ops-by-shape.txt").write_text(data.pop("ops_by_shape_table", ""))
        results[plugin] = data
    tables = []
    for plugin, data in results.items():
        phases = sorted(data["phases_s"].items(), key=lambda kv: -kv[1])
        mem = data.get("memory_gib", {})
        rows = [
            [
                name,
                round(s, 2),
                f"{100 * s / data['total_s']:.0f}%",
                mem.get(name, {}).get("rss_after"),
                mem.get(name, {}).get("peak_so_far"),
            ]
            for name, s in phases
        ]
        tables.append(
            f"**{plugin}**: {data['total_s']:.1f} s in the process, steps "
            f"{data.get('step_times_s')}\n\n"
            + markdown_table(
                ["phase", "s", "share", "RSS after (GiB)", "peak RSS so far (GiB)"], rows
            )
        )
        ops = data.get("ops", [])[:12]
        tables.append(
            markdown_table(
                ["top op (self CPU)", "s", "calls"],
                [[o["name"], round(o["self_cpu_s"], 2), o["calls"]] for o in ops],
            )
            + "\n\ncategories (share of profiled self CPU time): "
            + ", ".join(f"{k} {100 * v:.0f}%" for k, v in data["categories"].items())
        )
    text = "\n\n".join(tables)
    print(text)
    save_results(
        f"profile_plugins{args.tag}",
        {
            "settings": vars(args),
            "plugins": results,
            "load_average_start": load_start,
            "load_average_end": loadavg(),
            "workdir": str(work),
            "tables_markdown": text,
        },
    )
    cleanup(work, args.workdir)


if __name__ == "__main__":
    main()
