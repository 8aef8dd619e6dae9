"""GPU throughput of ftx's QLoRA and FFT on a random-initialised ~1B Llama: tokens/s, peak GPU
memory, MFU. Needs nothing downloaded: run it through ``bench/gpu.sh`` on an offline GPU machine.

The model is TinyLlama-1.1B's shape (hidden 2048, 22 layers, 32 heads / 4 KV heads, MLP 5632,
vocabulary 32000) with random weights, saved once in bf16 with a word-level tokenizer of 32000
made-up words, so every training row is exactly ``--seq`` tokens (no padding, no packing
effects). Each method runs ``ftx run --plugin P`` with ftx's GPU defaults in its own child
process (a fresh CUDA context), wrapped only to time every step (``cuda.synchronize`` at each
step end) and read ``torch.cuda.max_memory_allocated`` at the end:

* ``qlora``: 4-bit NF4 base, LoRA r16 on every linear layer, bf16;
* ``fft``: every weight, bf16, activation checkpointing (ftx's default on a GPU);
* ``fft-no-ckpt``: the same without activation checkpointing.

Steady-state tokens/s excludes the first ``--warmup`` steps. MFU = tokens/s × model FLOPs per
token / peak bf16 FLOP/s, with model FLOPs per token = 6·N + 12·L·d·s for FFT and
4·N + 6·N_lora + 12·L·d·s for QLoRA (frozen weights get no weight-gradient matmuls; N counts the
matmul weights, i.e. without the input embedding; recomputation under checkpointing is not
counted, as is usual for MFU). The peak is the card's dense bf16 spec when known, and also a
measured 8192³ bf16 matmul, so both ratios are printed.

Usage (on the GPU machine; ``bench/gpu.sh`` installs ftx from the tree first)::

    python bench/gpu.py [--steps 30] [--warmup 5] [--batch 8] [--seq 1024]
                        [--methods qlora,fft,fft-no-ckpt] [--out DIR] [--quick] [--tiny]

``--tiny`` (a 2-layer model, a few steps) checks the script on a CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s, by a fragment of the device name.
SPEC_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 80GB HBM3": 989.0,
    "H100 PCIe": 756.0,
    "H100": 756.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
}
ONE_B = {
    "vocab_size": 32000,
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 22,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
}
TINY = {
    "vocab_size": 1000,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}
METHODS = {
    "qlora": ("qlora", []),
    "fft": ("fft", []),
    "fft-no-ckpt": ("fft", ["train.activation_checkpointing=false"]),
}


def make_model(path: Path, shape: dict[str, int], max_len: int) -> dict[str, Any]:
    """Random-weight Llama (bf16 on a GPU) and a word-level tokenizer, saved to ``path``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"w{i}": i for i in range(3, shape["vocab_size"])})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="</s>", unk_token="<unk>"
    )
    config = LlamaConfig(
        **shape,
        max_position_embeddings=max(2048, max_len),
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    gpu = torch.cuda.is_available()
    with torch.device("cuda" if gpu else "cpu"):
        model = LlamaForCausalLM(config)
    if gpu:
        model = model.to(torch.bfloat16)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    n_total = sum(p.numel() for p in model.parameters())
    n_embed = model.get_input_embeddings().weight.numel()
    del model
    return {"params": n_total, "matmul_params": n_total - n_embed, "config": shape}


def make_data(path: Path, rows: int, seq: int, vocab: int, seed: int = 0) -> None:
    """``rows`` text rows of ``seq - 1`` random words (+ the eos ftx appends = ``seq`` tokens)."""
    rng = random.Random(seed)
    with path.open("w") as fh:
        for _ in range(rows):
            words = " ".join(f"w{rng.randrange(3, vocab)}" for _ in range(seq - 1))
            fh.write(json.dumps({"text": words}) + "\n")


def measured_peak_tflops() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return round(2 * n**3 * 10 / (time.perf_counter() - start) / 1e12, 1)


def worker(out_json: str, argv: list[str]) -> None:
    """Child: ``ftx run argv`` with a per-step timer and CUDA memory statistics."""
    import ftx.runner  # ftx before torch, as the ftx command

    report: dict[str, Any] = {}
    original_build = ftx.runner.execution.build_trainer

    def build(*args: Any, **kwargs: Any) -> Any:
        built = original_build(*args, **kwargs)
        trainer = built.trainer
        trainer.add_callback(step_timer(report))
        report["trainable_params"] = sum(
            p.numel() for p in trainer.model.parameters() if p.requires_grad
        )
        return built

    ftx.runner.execution.build_trainer = build
    import torch

    from ftx.cli import cli

    cli(["run", *argv], prog_name="ftx", standalone_mode=False)
    if torch.cuda.is_available():
        report["max_memory_allocated_bytes"] = torch.cuda.max_memory_allocated()
        report["max_memory_reserved_bytes"] = torch.cuda.max_memory_reserved()
        report["device"] = torch.cuda.get_device_name(0)
    Path(out_json).write_text(json.dumps(report))


def step_timer(report: dict[str, Any]) -> Any:
    import torch
    from transformers import TrainerCallback

    def sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    class StepTimer(TrainerCallback):
        t0 = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            sync()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            sync()
            report.setdefault("step_s", []).append(time.perf_counter() - self.t0)

    return StepTimer()


def flops_per_token(method: str, info: dict[str, Any], seq: int, lora: int) -> float:
    shape = info["config"]
    attention = 12 * shape["num_hidden_layers"] * shape["hidden_size"] * seq
    n = info["matmul_params"]
    if method == "qlora":
        return 4 * n + 6 * lora + attention
    return 6 * n + attention


def spec_tflops(device: str) -> float | None:
    for fragment, tflops in SPEC_TFLOPS.items():
        if fragment in device:
            return tflops
    return None


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--methods", default="qlora,fft,fft-no-ckpt")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--work", default="/tmp/ftx-gpu-bench")
    parser.add_argument("--quick", action="store_true", help="8 steps, 2 warm-up")
    parser.add_argument("--tiny", action="store_true", help="2-layer model: a CPU smoke test")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup = 8, 2
    if args.tiny:
        args.steps, args.warmup, args.batch, args.seq = 4, 1, 2, 32
    import torch
    import yaml

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model_dir = work / "model"
    shape = TINY if args.tiny else ONE_B
    t0 = time.perf_counter()
    info = make_model(model_dir, shape, args.seq)
    print(f"model: {info['params'] / 1e9:.2f}B parameters ({time.perf_counter() - t0:.0f} s)")
    data = work / "train.jsonl"
    make_data(data, args.steps * args.batch, args.seq, shape["vocab_size"])
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    measured = measured_peak_tflops()
    spec = spec_tflops(device)
    results: dict[str, Any] = {}
    for name in [m.strip() for m in args.methods.split(",") if m.strip()]:
        plugin, sets = METHODS[name]
        out_json = work / f"{name}.json"
        run_args = [
            "--plugin",
            plugin,
            "--model",
            str(model_dir),
            "--data",
            str(data),
            "--output",
            str(work / name),
            "--overwrite",
            "--set",
            f"train.max_steps={args.steps}",
            "--set",
            f"train.per_device_train_batch_size={args.batch}",
            "--set",
            f"data.max_length={args.seq}",
            "--set",
            "train.logging_steps=5",
            *[x for s in sets for x in ("--set", s)],
        ]
        print(f"running {name} …", flush=True)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, __file__, "--worker", str(out_json), *run_args],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - start
        (work / f"{name}.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            print(f"{name} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
            results[name] = {"error": done.stderr[-3000:]}
            continue
        report = json.loads(out_json.read_text())
        summary = json.loads((work / name / "summary.json").read_text())
        resolved = yaml.safe_load((work / name / "config.yaml").read_text())
        steady = report["step_s"][args.warmup :] or report["step_s"]
        step = statistics.median(steady)
        tokens_per_step = args.batch * args.seq
        tps = tokens_per_step / step
        lora = report["trainable_params"] if plugin == "qlora" else 0
        achieved = tps * flops_per_token(plugin, info, args.seq, lora) / 1e12
        results[name] = {
            "plugin": plugin,
            "sets": sets,
            "wall_s": round(wall, 1),
            "step_s_median": round(step, 4),
            "tokens_per_s": round(tps, 1),
            "tokens_per_s_ftx_summary": summary.get("tokens_per_s"),
            "achieved_tflops": round(achieved, 1),
            "mfu_vs_spec": round(achieved / spec, 4) if spec else None,
            "mfu_vs_measured_matmul": round(achieved / measured, 4) if measured else None,
            "max_memory_allocated_gib": round(
                report.get("max_memory_allocated_bytes", 0) / 2**30, 2
            ),
            "max_memory_reserved_gib": round(report.get("max_memory_reserved_bytes", 0) / 2**30, 2),
            "trainable_params": report.get("trainable_params"),
            "final_loss": summary.get("final_loss"),
            "activation_checkpointing": resolved["train"].get("activation_checkpointing"),
            "dtype": summary.get("dtype"),
            "attn_implementation": summary.get("attn_implementation"),
            "packing": summary.get("packing"),
        }
        print(json.dumps(results[name]), flush=True)
    header = (
        "| method | step s | tokens/s | TFLOP/s | MFU (spec) | MFU (measured matmul) "
        "| peak GPU mem (alloc / reserved) | trainable |\n|---|---|---|---|---|---|---|---|"
    )
    lines = [header]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | failed | | | | | | |")
            continue
        lines.append(
            f"| {name} | {r['step_s_median']} | {r['tokens_per_s']:,.0f} | {r['achieved_tflops']} "
            f"| {r['mfu_vs_spec']} | {r['mfu_vs_measured_matmul']} "
            f"| {r['max_memory_allocated_gib']} / {r['max_memory_reserved_gib']} GiB "
            f"| {r['trainable_params']:,} |"
        )
    table = "\n".join(lines)
    print(table)
    import importlib.metadata as md

    versions = {}
    for dist in ("torch", "transformers", "trl", "peft", "accelerate", "bitsandbytes", "ftx-core"):
        with contextlib.suppress(md.PackageNotFoundError):
            versions[dist] = md.version(dist)
    payload = {
        "bench": "gpu",
        "device": device,
        "spec_bf16_tflops": spec,
        "measured_matmul_tflops": measured,
        "model": info,
        "settings": vars(args),
        "versions": versions,
        "results": results,
        "table_markdown": table,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "gpu-tiny.json" if args.tiny else "gpu.json"
    (out / name).write_text(json.dumps(payload, indent=2) + "\n")
    print(f"results: {out / name}")


if __name__ == "__main__":
    main()
