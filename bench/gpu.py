"""GPU check of ftx's QLoRA and FFT on random-initialised models: tokens/s, peak GPU memory,
MFU, the attention used, as one JSON file. Needs nothing downloaded: run it through
``bench/gpu.sh`` on an offline GPU machine (about 15 minutes of one H200 all told; the runs
themselves stop starting new ones after ``--budget-s``, 360 s by default).

Models (random weights, saved once in bf16 with a word-level tokenizer of made-up words, so every
training row is exactly ``--seq`` tokens): ``smollm2`` (SmolLM2-135M's shape) and ``1b``
(TinyLlama-1.1B's shape). Each (model, variant) runs ``ftx run --plugin P`` with ftx's GPU
defaults plus the variant's settings in its own child process (a fresh CUDA context), wrapped
only to time every step (``cuda.synchronize`` at each step end) and read
``torch.cuda.max_memory_allocated`` at the end. Variants:

* ``qlora-bf16``: 4-bit NF4 base stored in bf16, LoRA r16 on every linear, bf16 autocast, paged
  AdamW (ftx's CUDA defaults on an A100/H100/H200);
* ``qlora-fp16``: the same as a T4/V100 runs it (fp16 compute, fp16 autocast + loss scaling);
* ``fft-bf16``: every weight, fp32 master weights, bf16 autocast, activation checkpointing;
* ``fft-fp16``: the same with fp16 autocast and loss scaling (the T4/V100 path);
* ``fft-pure-bf16``: bf16 weights (``model.dtype=bfloat16``, ftx's old GPU default);
* ``fft-fsdp1`` / ``qlora-fsdp1``: FSDP full_shard with one process (under torchrun);
* ``fft-fa2``: FlashAttention-2, when ``flash_attn`` is importable (else recorded as skipped);
* ``grpo-qlora``: ``--objective grpo`` on the QLoRA base (prompt rows, the ``exact`` reward,
  4 completions per prompt generated with transformers inside training);
* ``grpo-qlora-vllm``: the same with TRL's vLLM generation (``train.use_vllm=true``,
  ``vllm_mode=colocate``: vLLM in the training process), when ``vllm`` is importable (else
  recorded as skipped; ftx's CI never runs it: no GPU).

GRPO steps generate as well as train: their tokens/s is ftx's own (``summary.json``: prompt and
completion tokens per second of the run) and no MFU is computed for them.

Steady-state tokens/s excludes the first ``--warmup`` steps. MFU = tokens/s × model FLOPs per
token / peak dense bf16 FLOP/s (fp16's is the same on these GPUs), with model FLOPs per token =
6·N + 12·L·d·s for FFT and 4·N + 6·N_lora + 12·L·d·s for QLoRA (N: matmul weights without the
input embedding; recomputation not counted, as is usual for MFU). The peak is the card's spec
when known, and also a measured 8192³ bf16 matmul.

Usage (on the GPU machine; ``bench/gpu.sh`` installs ftx from the tree first)::

    python bench/gpu.py [--models smollm2,1b] [--methods qlora-bf16,fft-bf16,…] [--steps 20]
                        [--warmup 3] [--batch 8] [--seq 1024] [--budget-s 360] [--out DIR]
                        [--quick] [--tiny] [--dry-run]

``--tiny`` (a 2-layer model, a few steps; GPU-only variants skipped) runs the script on a CPU;
``--dry-run`` builds the models' shapes on the meta device, the data and every command line and
writes the JSON without training (the CPU-side logic, checked in CI by bench's own test).
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
SMOLLM2 = {
    "vocab_size": 49152,
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "tie_word_embeddings": True,
}
TINY = {
    "vocab_size": 1000,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}
MODELS = {"smollm2": SMOLLM2, "1b": ONE_B}
FP16 = ["train.bf16=false", "train.fp16=true"]
GRPO = [
    "objective.rewards=[exact]",
    "train.num_generations=4",
    "train.max_completion_length=128",
    "train.per_device_train_batch_size=8",
]
VLLM = ["train.use_vllm=true", "train.vllm_mode=colocate", "train.vllm_gpu_memory_utilization=0.3"]
METHODS: dict[str, tuple[str, list[str], str | None]] = {
    # name: (plugin, --set values, what it needs beyond a GPU: None | "torchrun" | "flash_attn")
    "qlora-bf16": ("qlora", [], None),
    "qlora-fp16": ("qlora", ["method.compute_dtype=float16", *FP16], None),
    "fft-bf16": ("fft", [], None),
    "fft-fp16": ("fft", FP16, None),
    "fft-pure-bf16": ("fft", ["model.dtype=bfloat16"], None),
    "fft-fsdp1": ("fft", ["method.fsdp=full_shard"], "torchrun"),
    "qlora-fsdp1": ("qlora", ["method.fsdp=full_shard"], "torchrun"),
    "fft-fa2": ("fft", ["model.attn_implementation=flash_attention_2"], "flash_attn"),
    "grpo-qlora": ("qlora", GRPO, None),
    "grpo-qlora-vllm": ("qlora", [*GRPO, *VLLM], "vllm"),
}
OBJECTIVES = {"grpo-qlora": "grpo", "grpo-qlora-vllm": "grpo"}
"""Variants that run another objective than supervised (on prompt rows, :func:`make_prompts`)."""
DEFAULT_METHODS = ",".join(METHODS)
GPU_ONLY = {"qlora-fp16", "fft-fp16", "fft-fsdp1", "qlora-fsdp1", "fft-fa2", "grpo-qlora-vllm"}
"""Variants a CPU cannot run (fp16 autocast, FSDP, flash-attn, vLLM): skipped by ``--tiny`` on a
CPU."""


def skip_reason(name: str, *, gpu: bool) -> str | None:
    """Why variant ``name`` cannot run here (None: it can)."""
    import importlib.util

    needs = METHODS[name][2]
    if not gpu and name in GPU_ONLY:
        return "needs a CUDA GPU"
    if needs == "flash_attn" and importlib.util.find_spec("flash_attn") is None:
        return "flash-attn is not installed (FlashAttention-2 absent: sdpa is used elsewhere)"
    if needs == "vllm" and importlib.util.find_spec("vllm") is None:
        return "vllm is not installed (TRL's vLLM generation untested; grpo-qlora generates "
        "with transformers)"
    return None


def shape_info(shape: dict[str, Any]) -> dict[str, Any]:
    """Parameter counts of a Llama of ``shape``, built on the meta device (no memory)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(**shape))
    n_total = sum(p.numel() for p in model.parameters())
    n_embed = model.get_input_embeddings().weight.numel()
    return {"params": n_total, "matmul_params": n_total - n_embed, "config": shape}


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
        **{"tie_word_embeddings": False, **shape},
        max_position_embeddings=max(2048, max_len),
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
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


def make_prompts(path: Path, rows: int, seq: int, vocab: int, seed: int = 1) -> None:
    """``rows`` prompt rows for GRPO: ``seq // 8`` random words and a one-word ``reference``
    (the ``exact`` reward's column)."""
    rng = random.Random(seed)
    with path.open("w") as fh:
        for _ in range(rows):
            words = " ".join(f"w{rng.randrange(3, vocab)}" for _ in range(max(2, seq // 8)))
            row = {"prompt": words, "reference": f"w{rng.randrange(3, vocab)}"}
            fh.write(json.dumps(row) + "\n")


def data_file(name: str, model: str, work: Path) -> Path:
    """The rows variant ``name`` trains on: prompts for :data:`OBJECTIVES`, else text."""
    return work / (f"{model}-prompts.jsonl" if name in OBJECTIVES else f"{model}.jsonl")


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


def run_args(name: str, model_dir: Path, data: Path, out: Path, args: Any) -> list[str]:
    """The ``ftx run`` arguments of variant ``name``."""
    plugin, sets, _ = METHODS[name]
    fixed = [
        f"train.max_steps={args.steps}",
        f"train.per_device_train_batch_size={args.batch}",
        f"data.max_length={args.seq}",
        "train.logging_steps=5",
        "train.save_strategy=no",
        *sets,
    ]
    base = ["--plugin", plugin, "--model", str(model_dir), "--data", str(data)]
    if name in OBJECTIVES:
        base += ["--objective", OBJECTIVES[name]]
    base += ["--output", str(out), "--overwrite"]
    return base + [x for value in fixed for x in ("--set", value)]


def child_command(name: str, out_json: Path, argv: list[str]) -> list[str]:
    """The child process of one variant: this script's worker, under a one-process torchrun
    for the FSDP variants (a process group; the worker then runs ftx without relaunching)."""
    if METHODS[name][2] == "torchrun":
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        return [*launcher, "--nproc_per_node=1", __file__, "--worker", str(out_json), *argv]
    return [sys.executable, __file__, "--worker", str(out_json), *argv]


def measure(name: str, model: str, info: dict, work: Path, args: Any, peaks: dict) -> dict:
    """Run one variant in a child process and read what it reported."""
    import yaml

    plugin = METHODS[name][0]
    out = work / f"{model}-{name}"
    out_json = work / f"{model}-{name}.json"
    argv = run_args(name, work / model, data_file(name, model, work), out, args)
    start = time.perf_counter()
    done = subprocess.run(
        child_command(name, out_json, argv), capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    (work / f"{model}-{name}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        print(f"{model}/{name} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
        return {"error": done.stderr[-3000:], "wall_s": round(wall, 1)}
    report = json.loads(out_json.read_text())
    summary = json.loads((out / "summary.json").read_text())
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    steady = report["step_s"][args.warmup :] or report["step_s"]
    step = statistics.median(steady)
    lora = report["trainable_params"] if plugin == "qlora" else 0
    if name in OBJECTIVES:  # generation and training: ftx's own token count, no MFU
        tps = summary.get("tokens_per_s") or 0.0
        achieved = 0.0
    else:
        tps = args.batch * args.seq / step
        achieved = tps * flops_per_token(plugin, info, args.seq, lora) / 1e12
    spec, measured = peaks.get("spec"), peaks.get("measured")
    return {
        "plugin": plugin,
        "sets": METHODS[name][1],
        "wall_s": round(wall, 1),
        "step_s_median": round(step, 4),
        "tokens_per_s": round(tps, 1),
        "tokens_per_s_ftx_summary": summary.get("tokens_per_s"),
        "achieved_tflops": round(achieved, 2),
        "mfu_vs_spec": round(achieved / spec, 4) if spec and achieved else None,
        "mfu_vs_measured_matmul": round(achieved / measured, 4) if measured and achieved else None,
        "max_memory_allocated_gib": round(report.get("max_memory_allocated_bytes", 0) / 2**30, 2),
        "max_memory_reserved_gib": round(report.get("max_memory_reserved_bytes", 0) / 2**30, 2),
        "trainable_params": report.get("trainable_params"),
        "final_loss": summary.get("final_loss"),
        "precision": summary.get("precision"),
        "optim": resolved["train"].get("optim"),
        "engine": summary.get("engine"),
        "activation_checkpointing": resolved["train"].get("activation_checkpointing"),
        "dtype": summary.get("dtype"),
        "attn_implementation": summary.get("attn_implementation"),
        "training_attention": summary.get("training_attention"),
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| model / variant | step s | tokens/s | TFLOP/s | MFU (spec) | peak GPU mem (alloc / "
        "reserved) | attention |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, r in results.items():
        if "error" in r or "skipped" in r:
            lines.append(f"| {key} | {r.get('skipped') or 'failed'} | | | | | |")
            continue
        if "command" in r:  # dry run
            lines.append(f"| {key} | (dry run) | | | | | |")
            continue
        lines.append(
            f"| {key} | {r['step_s_median']} | {r['tokens_per_s']:,.0f} | {r['achieved_tflops']} "
            f"| {r['mfu_vs_spec']} | {r['max_memory_allocated_gib']} / "
            f"{r['max_memory_reserved_gib']} GiB | {r['training_attention']} |"
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2,1b")
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--budget-s", type=float, default=360.0, help="start no run after this")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--work", default="/tmp/ftx-gpu-bench")
    parser.add_argument("--quick", action="store_true", help="8 steps, 2 warm-up")
    parser.add_argument("--tiny", action="store_true", help="2-layer model: a CPU smoke test")
    parser.add_argument("--dry-run", action="store_true", help="plan and write, train nothing")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup = 8, 2
    if args.tiny:
        args.steps, args.warmup, args.batch, args.seq = 4, 1, 2, 32
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS] + [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(
            f"unknown: {', '.join(unknown)} (models {list(MODELS)}, methods {list(METHODS)})"
        )
    import torch

    gpu = torch.cuda.is_available()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    device = torch.cuda.get_device_name(0) if gpu else "cpu"
    peaks = (
        {} if args.dry_run else {"spec": spec_tflops(device), "measured": measured_peak_tflops()}
    )
    started = time.perf_counter()
    results: dict[str, Any] = {}
    infos: dict[str, Any] = {}
    for model in models:
        shape = TINY if args.tiny else MODELS[model]
        if args.dry_run:
            infos[model] = shape_info(shape)
        else:
            t0 = time.perf_counter()
            infos[model] = make_model(work / model, shape, args.seq)
            print(f"{model}: {infos[model]['params'] / 1e9:.3f}B parameters "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
        make_data(work / f"{model}.jsonl", args.steps * args.batch, args.seq, shape["vocab_size"])
        make_prompts(
            work / f"{model}-prompts.jsonl", args.steps * args.batch, args.seq, shape["vocab_size"]
        )
        for name in methods:
            key = f"{model}/{name}"
            reason = skip_reason(name, gpu=gpu or args.dry_run)
            if reason:
                results[key] = {"skipped": reason}
            elif args.dry_run:
                out = work / f"{model}-{name}"
                argv = run_args(name, work / model, data_file(name, model, work), out, args)
                results[key] = {"command": child_command(name, work / "x.json", argv)}
            elif time.perf_counter() - started > args.budget_s:
                results[key] = {"skipped": f"time budget ({args.budget_s:.0f} s) spent"}
            else:
                print(f"running {key} …", flush=True)
                results[key] = measure(name, model, infos[model], work, args, peaks)
            print(f"{key}: {json.dumps(results[key])}", flush=True)
    text = table(results)
    print(text)
    import importlib.metadata as md

    versions = {}
    for dist in ("torch", "transformers", "trl", "peft", "accelerate", "bitsandbytes", "flash-attn",
                 "ftx-core"):  # fmt: skip
        with contextlib.suppress(md.PackageNotFoundError):
            versions[dist] = md.version(dist)
    payload = {
        "bench": "gpu",
        "dry_run": args.dry_run,
        "device": device,
        "spec_bf16_tflops": peaks.get("spec"),
        "measured_matmul_tflops": peaks.get("measured"),
        "flash_attn_importable": skip_reason("fft-fa2", gpu=True) is None,
        "models": infos,
        "settings": vars(args),
        "versions": versions,
        "results": results,
        "total_s": round(time.perf_counter() - started, 1),
        "table_markdown": text,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "gpu-dry-run.json" if args.dry_run else "gpu-tiny.json" if args.tiny else "gpu.json"
    (out / name).write_text(json.dumps(payload, indent=2) + "\n")
    print(f"results: {out / name}")


if __name__ == "__main__":
    main()
