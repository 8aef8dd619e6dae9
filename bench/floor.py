"""The floor: each method's training step against its own matrix multiplications alone.

For each plugin (default fft, sft, qlora) one short ``ftx run`` on the demo rows runs in a
child process with ftx's own settings for this machine (precision, attention, threads). After
``--warmup`` steps it times ``--timed`` steps, then records one more under ``torch.profiler``
(shapes and dtypes). When training ends, in the same process and with the same threads, every
matrix multiplication the profiler recorded in that step (``aten::mm``, ``addmm``, ``bmm``,
``baddbmm``: forward and backward, with their shapes, dtypes and count) is run again alone on
fresh tensors and timed. Per method it prints:

* **step / matmul**: the median timed step over the matmuls' summed time: how far the step is
  from the floor its own matrix multiplications set (1.0 = nothing but matmuls);
* **MFU**: the step's matmul FLOPs per second of step time over the measured peak of this CPU's
  best fp32 and bf16 matmul (square ``torch.mm`` up to 2048, the same threads), so that the
  figure means the same on another CPU; and the replayed matmuls' own rate over that peak
  (how well the step's shapes use the matmul units);
* **the top non-matmul costs** of the profiled step (operators by self CPU time), and the time
  outside any operator (Python, the Trainer, data collation).

Matmuls are replayed on contiguous tensors; the profiled step's may be transposed views (the
backward's), which BLAS handles with a flag, at about the same speed. Attention kernels
(``scaled_dot_product``) and bitsandbytes' 4-bit dequantisation count as non-matmul costs.

Usage::

    python bench/floor.py [--plugins fft,sft,qlora] [--warmup 2] [--timed 3] [--quick]
        [--set section.key=value ...]

Results: ``bench/results/floor.json`` (``--tag`` adds a suffix).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")
DTYPES = {"float": "float32", "c10::BFloat16": "bfloat16", "c10::Half": "float16"}
PEAK_SIZE = 2048


def worker(out_json: str, warmup: int, timed: int, argv: list[str]) -> None:
    """Child: ``ftx ARGV`` (an ``ftx run`` command line) with a callback that times steps,
    profiles one and, when training ends, replays its matmuls."""
    from ftx.process_env import configure_command_process

    configure_command_process()  # OMP_WAIT_POLICY and HF_HUB_OFFLINE, as the command does
    report: dict[str, Any] = {}

    import ftx.runner.execution

    original_build = ftx.runner.execution.build_trainer

    def build(*args: Any, **kwargs: Any) -> Any:
        built = original_build(*args, **kwargs)
        built.trainer.add_callback(floor_callback(warmup, timed, report))
        return built

    ftx.runner.execution.build_trainer = build
    from ftx.cli import cli

    try:
        cli(argv, prog_name="ftx", standalone_mode=False)
    finally:
        Path(out_json).write_text(json.dumps(report, indent=2))


def floor_callback(warmup: int, timed: int, report: dict[str, Any]) -> Any:
    """A TrainerCallback that fills ``report``: step times, the profiled step's operators and
    matmuls, their replay, and the machine's peak matmul rates."""
    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback

    profiled_step = warmup + timed  # 0-based global_step at the profiled step's start

    class Floor(TrainerCallback):
        def __init__(self) -> None:
            self.prof: Any = None
            self.t0 = 0.0
            self.steps: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == profiled_step:
                self.prof = profile(activities=[ProfilerActivity.CPU], record_shapes=True)
                self.prof.__enter__()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            seconds = time.perf_counter() - self.t0
            if self.prof is None:
                self.steps.append(seconds)
                return
            self.prof.__exit__(None, None, None)
            report["profiled_step_s"] = seconds
            report.update(profiled_ops(self.prof, seconds))
            self.prof = None
            control.should_training_stop = True

        def on_train_end(self, args, state, control, **kwargs):
            import torch

            report["step_times_s"] = [round(t, 4) for t in self.steps]
            report["timed_step_s"] = statistics.median(self.steps[warmup:] or self.steps)
            report["threads"] = torch.get_num_threads()
            report["replay"] = replay(report.get("matmuls", []))
            report["peak_gflops"] = {d: peak_gflops(d) for d in ("float32", "bfloat16")}

    return Floor()


def profiled_ops(prof: Any, step_s: float) -> dict[str, Any]:
    """The profiled step's matmuls (op, shapes, dtypes, count) and its top other operators."""
    matmuls: Counter[tuple[str, str, str]] = Counter()
    for event in prof.events():
        if event.name in MATMUL_OPS:
            shapes = json.dumps(event.input_shapes)
            matmuls[(event.name, shapes, json.dumps(list(event.input_dtypes or [])))] += 1
    others = [
        {"name": e.key, "self_s": e.self_cpu_time_total / 1e6, "calls": e.count}
        for e in prof.key_averages()
        if e.key not in MATMUL_OPS
    ]
    others.sort(key=lambda o: -o["self_s"])
    all_self = sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e6
    return {
        "matmuls": [
            {"op": op, "shapes": json.loads(s), "dtypes": json.loads(d), "count": n}
            for (op, s, d), n in matmuls.items()
        ],
        "top_other_ops": others[:12],
        "outside_ops_s": max(step_s - all_self, 0.0),
    }


def replay(matmuls: list[dict[str, Any]]) -> dict[str, Any]:
    """Each recorded matmul run alone on fresh tensors: total seconds per step and FLOPs."""
    import torch

    total_s = 0.0
    flops = 0.0
    rows = []
    for mm in matmuls:
        args, work = matmul_inputs(mm["op"], mm["shapes"], mm["dtypes"])
        fn = getattr(torch, mm["op"].split("::")[1])
        seconds = time_call(lambda fn=fn, args=args: fn(*args))
        total_s += seconds * mm["count"]
        flops += work * mm["count"]
        rows.append({**mm, "seconds_each": seconds, "gflops_each": work / 1e9})
    rows.sort(key=lambda r: -r["seconds_each"] * r["count"])
    return {"matmul_s": total_s, "matmul_gflop": flops / 1e9, "top": rows[:10]}


def matmul_inputs(op: str, shapes: list[list[int]], dtypes: list[str]) -> tuple[list[Any], float]:
    """Fresh tensors for one recorded call of ``op`` and its FLOPs (2·m·k·n per product)."""
    import torch

    def tensor(i: int) -> Any:
        dtype = getattr(torch, DTYPES.get(dtypes[i], "float32")) if i < len(dtypes) else None
        return torch.randn(shapes[i], dtype=dtype or torch.float32)

    if op == "aten::mm":
        (m, k), (_, n) = shapes[0], shapes[1]
        return [tensor(0), tensor(1)], 2.0 * m * k * n
    if op == "aten::addmm":
        (m, k), (_, n) = shapes[1], shapes[2]
        return [tensor(0), tensor(1), tensor(2)], 2.0 * m * k * n
    if op == "aten::bmm":
        (b, m, k), (_, _, n) = shapes[0], shapes[1]
        return [tensor(0), tensor(1)], 2.0 * b * m * k * n
    (b, m, k), (_, _, n) = shapes[1], shapes[2]  # baddbmm
    return [tensor(0), tensor(1), tensor(2)], 2.0 * b * m * k * n


def time_call(fn: Any, *, min_total_s: float = 0.05, rounds: int = 3) -> float:
    """Median seconds of one call of ``fn`` over ``rounds`` rounds, after one warm-up call;
    each round repeats the call until it has taken ``min_total_s``."""
    fn()
    results = []
    for _ in range(rounds):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_total_s:
                break
        results.append(elapsed / n)
    return statistics.median(results)


def peak_gflops(dtype: str) -> float:
    """This process's best matmul rate in ``dtype`` on square products of 256 up to
    ``PEAK_SIZE``, GFLOP/s. Sizes stop growing once one product takes over half a second (bf16
    without bf16 hardware runs a reference kernel at well under 1 GFLOP/s)."""
    import torch

    best, size = 0.0, 256
    while size <= PEAK_SIZE:
        a = torch.randn(size, size, dtype=getattr(torch, dtype))
        b = torch.randn(size, size, dtype=getattr(torch, dtype))
        started = time.perf_counter()
        torch.mm(a, b)
        if time.perf_counter() - started > 0.5:
            seconds = time.perf_counter() - started
        else:
            seconds = time_call(lambda a=a, b=b: torch.mm(a, b), min_total_s=0.2)
        best = max(best, 2.0 * size**3 / seconds / 1e9)
        if seconds > 0.5:
            break
        size *= 2
    return best


def summarise(plugin: str, data: dict[str, Any]) -> dict[str, Any]:
    """One method's figures: step, matmul time, ratio, MFU against each measured peak."""
    step = data["timed_step_s"]
    replayed = data["replay"]
    gflop = replayed["matmul_gflop"]
    row: dict[str, Any] = {
        "method": plugin,
        "step_s": round(step, 3),
        "matmul_s": round(replayed["matmul_s"], 3),
        "step_over_matmul": round(step / replayed["matmul_s"], 2) if replayed["matmul_s"] else None,
        "matmul_gflop": round(gflop, 1),
        "outside_ops_s": round(data["outside_ops_s"], 3),
        "profiled_step_s": round(data["profiled_step_s"], 3),
    }
    for dtype, peak in data["peak_gflops"].items():
        row[f"mfu_vs_{dtype}_peak"] = round(gflop / step / peak, 3)
        row[f"replay_vs_{dtype}_peak"] = round(gflop / replayed["matmul_s"] / peak, 3)
    return row


def calibration_line(calibration: dict[str, Any] | None) -> str:
    """What ftx's CPU calibration measured and chose for these runs (``summary.json``)."""
    if not calibration:
        return "calibration: none recorded (not a CPU run)"
    chosen = "bf16 autocast" if calibration["bf16_autocast"] else "fp32 compute"
    line = (
        f"calibration ({calibration['source']}): {chosen}; matmul 512x576x1536 fp32 "
        f"{calibration['fp32_gflops']} GFLOP/s, bf16 {calibration['bf16_gflops']} GFLOP/s"
    )
    if calibration["bf16_autocast"]:
        line += f"; bf16 attention on fp32 copies up to {calibration['attention_fp32_max_length']}"
    return line


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])
        return
    import common

    from ftx.testing.commands import run_argv

    parser = common.bench_parser(__doc__, quick="1 warm-up step, 1 timed", ignore=("eval-limit",))
    parser.add_argument("--plugins", default="fft,sft,qlora")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--timed", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--model", help="model to train (default: the demo's SmolLM2)")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--workdir")
    parser.add_argument("--tag", default="", help="suffix for the results file name")
    args = parser.parse_args()
    if args.quick:
        args.warmup, args.timed = 1, 1
    steps = args.warmup + args.timed + 1
    work = common.workdir("floor", args.workdir)
    model = Path(args.model) if args.model else common.demo_model()
    subset = common.write_subset(common.demo_data()[0], steps * args.batch, work / "train.jsonl")
    info = common.machine()
    results: dict[str, Any] = {}
    rows = []
    for plugin in [p.strip() for p in args.plugins.split(",") if p.strip()]:
        out_json = work / f"{plugin}.json"
        train = {"max_steps": steps, "per_device_train_batch_size": args.batch}
        argv = run_argv(
            plugin, model=model, data=subset, output=work / plugin, train=train, sets=args.sets
        )
        cmd = [str(common.MAIN_PY), __file__, "--worker", str(out_json), str(args.warmup)]
        cmd += [str(args.timed), *argv, "--overwrite"]
        common.log(f"floor of {plugin}")
        result = common.run_child(cmd, log_path=work / f"{plugin}.log", env={"OMP_WAIT_POLICY": ""})
        common.require_ok(result, f"floor {plugin}")
        common.prune_checkpoints(work / plugin)
        data = json.loads(out_json.read_text())
        summary = json.loads((work / plugin / "summary.json").read_text())
        data["precision"] = summary.get("precision", {}).get("description")
        data["calibration"] = summary.get("calibration")
        data["summary"] = summarise(plugin, data)
        results[plugin] = data
        rows.append(data["summary"])
    first = next(iter(results.values()), {})
    peaks, threads = first.get("peak_gflops", {}), first.get("threads", "?")
    headers = ["method", "step s", "matmul s", "step / matmul", "GFLOP/step", "MFU fp32 peak"]
    headers += ["MFU bf16 peak", "replayed matmuls / fp32 peak", "outside ops s"]
    table = common.markdown_table(
        headers,
        [
            [
                r["method"],
                r["step_s"],
                r["matmul_s"],
                r["step_over_matmul"],
                r["matmul_gflop"],
                r["mfu_vs_float32_peak"],
                r["mfu_vs_bfloat16_peak"],
                r["replay_vs_float32_peak"],
                r["outside_ops_s"],
            ]
            for r in rows
        ],
    )
    lines = [
        f"CPU: {common.cpu_label(info)}; peak matmul (square, up to {PEAK_SIZE}, "
        f"{threads} threads): " + ", ".join(f"{d} {g:.1f} GFLOP/s" for d, g in peaks.items()),
        calibration_line(first.get("calibration")),
        "",
        table,
    ]
    for plugin, data in results.items():
        top = ", ".join(f"{o['name']} {o['self_s']:.3f} s" for o in data["top_other_ops"][:6])
        lines.append(f"\n**{plugin}** ({data['precision']}): top non-matmul ops: {top}")
    text = "\n".join(lines)
    print(text)
    common.save_results(
        f"floor{args.tag}",
        {"settings": vars(args), "rows": rows, "plugins": results, "table_markdown": text},
    )
    common.cleanup(work, args.workdir)


if __name__ == "__main__":
    main()
