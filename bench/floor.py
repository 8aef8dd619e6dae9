"""The floor: each method's training step against its own matrix multiplications alone.

For each plugin (default fft, sft, qlora) one short ``ftx run`` runs in a child process with
ftx's own settings for this machine (precision, attention, threads), on one demo row of median
length repeated (every step then has the same tokens and shapes). After ``--warmup`` steps it
records one step under ``torch.profiler`` (shapes and dtypes), runs one more untimed (the
first step after profiling ran up to a third slower); then ``--timed`` times, it times
one step and, right after it, in the same process and threads, runs every matrix
multiplication the profiled step recorded (``aten::mm``, ``addmm``, ``bmm``, ``baddbmm``:
forward and backward, with their shapes, dtypes and count) alone on fresh tensors. Each
(step, matmuls) pair is measured back to back, so that load from other processes reaches both
halves of its ratio alike (on a shared 2-core machine the matmuls alone varied by a third
between runs). Per method it prints:

* **step / matmul**: the median over the pairs of step time over the matmuls' summed time, with
  the pairs' range: how far the step is from the floor its own matrix multiplications set
  (1.0 = nothing but matmuls);
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

    python bench/floor.py [--plugins fft,sft,qlora] [--warmup 5] [--timed 5] [--quick]
        [--set section.key=value ...]

Results: ``bench/results/floor.json`` (``--tag`` adds a suffix).
"""

from __future__ import annotations

import json
import resource
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
    """A TrainerCallback that fills ``report``: the profiled step's operators and matmuls, then
    ``timed`` pairs of (one timed step, its matmuls replayed alone right after it), and the
    machine's peak matmul rates. Each pair's two halves run back to back, so load from other
    processes that comes and goes reaches both sides of its ratio alike."""
    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback

    class Floor(TrainerCallback):
        def __init__(self) -> None:
            self.prof: Any = None
            self.t0 = 0.0
            self.index = 0  # steps ended so far
            self.matmuls: list[dict[str, Any]] = []
            self.pairs: list[dict[str, float]] = []

        def on_step_begin(self, args, state, control, **kwargs):
            if self.index == warmup:
                self.prof = profile(activities=[ProfilerActivity.CPU], record_shapes=True)
                self.prof.__enter__()
            self.faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            seconds = time.perf_counter() - self.t0
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - self.faults0
            self.index += 1
            if self.prof is not None:
                self.prof.__exit__(None, None, None)
                report["profiled_step_s"] = seconds
                report.update(profiled_ops(self.prof, seconds))
                self.matmuls = report["matmuls"]
                self.prof = None
            elif self.index > warmup + 2:  # the step after the profiled one settles, untimed
                replayed = replay(self.matmuls)
                self.pairs.append(
                    {"step_s": seconds, "matmul_s": replayed["matmul_s"], "page_faults": faults}
                )
                report["replay"] = replayed
            if self.index >= warmup + 2 + timed:
                control.should_training_stop = True

        def on_train_end(self, args, state, control, **kwargs):
            import torch

            report["pairs"] = [{k: round(v, 6) for k, v in p.items()} for p in self.pairs]
            report["threads"] = torch.get_num_threads()
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
    by_shape = [
        {"name": e.key, "shapes": e.input_shapes, "self_s": e.self_cpu_time_total / 1e6}
        for e in prof.key_averages(group_by_input_shape=True)
        if e.key not in MATMUL_OPS
    ]
    by_shape.sort(key=lambda o: -o["self_s"])
    all_self = sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e6
    return {
        "matmuls": [
            {"op": op, "shapes": json.loads(s), "dtypes": json.loads(d), "count": n}
            for (op, s, d), n in matmuls.items()
        ],
        "top_other_ops": others[:12],
        "top_other_ops_by_shape": by_shape[:20],
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
    """One method's figures: the median step and matmul time over the pairs, the median of the
    pairs' ratios with their range, and MFU against each measured peak."""
    pairs = data["pairs"]
    ratios = [p["step_s"] / p["matmul_s"] for p in pairs if p["matmul_s"]]
    step = statistics.median(p["step_s"] for p in pairs)
    matmul_s = statistics.median(p["matmul_s"] for p in pairs)
    gflop = data["replay"]["matmul_gflop"]
    row: dict[str, Any] = {
        "method": plugin,
        "step_s": round(step, 3),
        "matmul_s": round(matmul_s, 3),
        "step_over_matmul": round(statistics.median(ratios), 2) if ratios else None,
        "ratio_range": [round(min(ratios), 2), round(max(ratios), 2)] if ratios else None,
        "matmul_gflop": round(gflop, 1),
        "outside_ops_s": round(data["outside_ops_s"], 3),
        "profiled_step_s": round(data["profiled_step_s"], 3),
    }
    for dtype, peak in data["peak_gflops"].items():
        row[f"mfu_vs_{dtype}_peak"] = round(gflop / step / peak, 3)
        row[f"replay_vs_{dtype}_peak"] = round(gflop / matmul_s / peak, 3)
    return row


def write_repeated_row(source: Path, copies: int, target: Path) -> Path:
    """``copies`` copies of the row of median length among ``source``'s first 240 rows: every
    step then trains on the same tokens, so each timed step runs exactly the matmuls the
    profiled step recorded (the demo's rows differ in length, and a step of other rows would
    have other shapes)."""
    lines = [line for line in source.read_text().splitlines() if line.strip()][:240]
    row = sorted(lines, key=len)[len(lines) // 2]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text((row + "\n") * copies)
    return target


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
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--timed", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--model", help="model to train (default: the demo's SmolLM2)")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--workdir")
    parser.add_argument("--tag", default="", help="suffix for the results file name")
    args = parser.parse_args()
    if args.quick:
        args.warmup, args.timed = 1, 1
    steps = args.warmup + args.timed + 2
    work = common.workdir("floor", args.workdir)
    model = Path(args.model) if args.model else common.demo_model()
    subset = write_repeated_row(common.demo_data()[0], steps * args.batch, work / "train.jsonl")
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
    headers = ["method", "step s", "matmul s", "step / matmul", "range", "GFLOP/step"]
    headers += ["MFU fp32 peak"]
    headers += ["MFU bf16 peak", "replayed matmuls / fp32 peak", "outside ops s"]
    table = common.markdown_table(
        headers,
        [
            [
                r["method"],
                r["step_s"],
                r["matmul_s"],
                r["step_over_matmul"],
                "–".join(str(x) for x in r["ratio_range"] or []),
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
