"""Export cost on the demo model: the in-memory LoRA merge (before) vs the streaming one (now),
and the GGUF export, each in its own process: wall time and peak anonymous memory.

The base is the cached SmolLM2-135M-Instruct (fp32 safetensors, converted from the GGUF); the
adapter is a LoRA of the qlora plugin's default shape (r=16, alpha=32, all linear layers of
the blocks) with random non-zero weights, so the merge does the arithmetic of a trained one.
``in_memory`` is ``ftx.adapters.merge_adapter_in_memory`` (the whole base loaded in fp32, PEFT's
``merge_and_unload``, ``save_pretrained``: what every export did before); ``streaming`` is
``ftx.adapters.merge_adapter`` now (``ftx.merging``); ``gguf-f16``/``gguf-q8_0`` write the
streamed model as GGUF (``ftx.gguf_export``). Peak RssAnon is sampled in the child
(``ftx.testing.anon_memory``) above its value after the imports; peak RSS (VmHWM) is the
whole process's. Results: ``bench/results/merge_export.json``.

Usage::

    python bench/merge_export.py [--repeats 2] [--quick]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import bench_parser, demo_model, loadavg, log, markdown_table, ratio, save_results

CHILD = """
import json, sys, time
from pathlib import Path

import torch, peft, transformers, safetensors.torch, gguf  # imported before the baseline
from ftx.adapters import merge_adapter, merge_adapter_in_memory
from ftx.gguf_export import GgufPlan, export_gguf
from ftx.models import load_tokenizer
from ftx.testing.anon_memory import PeakAnon

mode, base, adapter, target = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
tok = load_tokenizer(base)
started = time.perf_counter()
with PeakAnon() as peak:
    if mode == "in_memory":
        merge_adapter_in_memory(adapter, base, tok, target)
    elif mode == "streaming":
        merge_adapter(adapter, base, tok, target)
    else:
        config = json.loads((base / "config.json").read_text())
        quant = mode.removeprefix("gguf-")
        plan = GgufPlan(base.parent, base, quant, target, config, None)
        export_gguf(plan)
seconds = time.perf_counter() - started
hwm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "peak_anon": peak.bytes, "vm_hwm": hwm}))
"""

MODES = ("in_memory", "streaming", "gguf-f16", "gguf-q8_0")


def make_adapter(base: Path, target: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    config = LoraConfig(r=16, lora_alpha=32, target_modules=targets, init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(target)
    return target


def measure(mode: str, base: Path, adapter: Path, target: Path) -> dict:
    args = [sys.executable, "-c", CHILD, mode, str(base), str(adapter), str(target)]
    out = subprocess.run(args, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = bench_parser(__doc__, quick="one repeat")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    base = demo_model()
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        adapter = make_adapter(base, root / "adapter")
        for repeat in range(repeats):
            for mode in MODES:  # interleaved, so load changes hit every mode alike
                if mode.startswith("gguf"):
                    source, target = root / "streaming-0" / "model", root / f"{mode}.gguf"
                else:
                    source, target = base, root / f"{mode}-{repeat}" / "model"
                log(f"{mode} #{repeat + 1} (load {loadavg()})")
                row = measure(mode, source, adapter, target)
                if mode.startswith("gguf"):
                    row["file_bytes"] = target.stat().st_size
                results[mode].append(row)
        merged = root / "streaming-0" / "model"
        model_bytes = sum(p.stat().st_size for p in merged.glob("*.safetensors"))

    best = {mode: min(rows, key=lambda r: r["seconds"]) for mode, rows in results.items()}
    peak = {mode: max(r["peak_anon"] for r in rows) for mode, rows in results.items()}
    table = [
        [
            mode,
            f"{best[mode]['seconds']:.1f} s",
            f"{peak[mode] / 2**20:.0f} MiB",
            f"{max(r['vm_hwm'] for r in results[mode]) / 2**20:.0f} MiB",
            f"{best[mode].get('file_bytes', model_bytes) / 2**20:.0f} MiB",
        ]
        for mode in MODES
    ]
    print(markdown_table(["export", "time", "peak RssAnon", "peak RSS", "output"], table))
    summary = {
        "time_in_memory_over_streaming": ratio(
            best["in_memory"]["seconds"], best["streaming"]["seconds"]
        ),
        "peak_anon_in_memory_over_streaming": ratio(peak["in_memory"], peak["streaming"]),
    }
    print(json.dumps(summary))
    save_results(
        "merge_export",
        {
            "base": str(base),
            "adapter": "LoRA r=16 alpha=32 on all block linears, random weights",
            "repeats": repeats,
            "runs": results,
            "summary": summary,
            "loadavg_end": loadavg(),
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )


if __name__ == "__main__":
    main()
