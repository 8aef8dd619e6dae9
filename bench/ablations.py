"""What each CPU optimisation buys: per-step A/B on identical weights, through TRL's real loss.

For each plugin a child process builds the trainer exactly as ``ftx run`` does (ftx's hooks, its
collator, TRL's ``SFTTrainer``; the run is stopped right before ``trainer.train``), takes the
first ``--batches`` + 1 batches of the demo data, and times one forward+backward
(``trainer.compute_loss`` + ``backward``; no optimizer step, so every variant sees the same
weights and the losses are comparable) per variant and batch, the variants alternating:

* ``ftx default``: bf16 autocast (this CPU has AVX512-BF16), no activation checkpointing;
* ``+ activation checkpointing``: what TRL's and LLaMA-Factory's default (on) costs on a CPU;
* ``fp32 (no bf16 autocast)``: what bf16 buys (for qlora the 4-bit matmuls keep their bf16
  compute dtype; ``--qlora-fp32`` adds a separate run with ``method.compute_dtype=float32``);
* ``TRL's loss (LM head on every position)``: ``SFTTrainer.compute_loss`` instead of ftx's lean
  CPU loss (``ftx/trainer.py``): TRL 1.16's fused LM head scores only the positions with a label
  on Triton devices and *every* position elsewhere, in Python-level vocabulary tiles, plus
  entropy and token accuracy over the full vocabulary; ftx projects only the trained positions;
* ``LoRA dropout 0.05`` (qlora): what ftx's default of 0 saves: dropout draws a Bernoulli mask
  for every LoRA input (PEFT's ``nn.Identity`` swapped for ``nn.Dropout(0.05)``);
* ``PEFT's LoRA forward`` (qlora): PEFT's own LoRA layer forward instead of ftx's
  (``ftx/lora_forward.py``: the update added by one ``addmm``, no clone of the base output,
  the scaling on the ``r``-wide intermediate);
* ``frozen weights in bf16`` (qlora, sft): the frozen weights that are not 4-bit (embeddings,
  norms; for sft the frozen blocks too) stored in bf16 instead of fp32: PEFT's
  ``prepare_model_for_kbit_training`` upcasts them, so the residual stream and the saved
  activations are fp32 and autocast re-casts every frozen weight on every forward;
* ``4-bit weights dequantised to bf16`` (qlora): on the CPU ftx loads the model in fp32 before
  quantising, so every 4-bit weight is dequantised to fp32 (``quant_state.dtype``) and then
  cast to bf16 for the matmul, forward and backward; here it is dequantised straight to bf16
  (what loading in bf16, as on a GPU and as LLaMA-Factory does, gives);
* ``all proposed``: frozen weights in bf16 + bf16 dequantisation (where they apply): the two
  changes measured here and not (yet) made in ftx.

Reported: median step time per variant, its ratio to ftx's default, and the mean loss (the
variants that change no arithmetic must agree to rounding). Results:
``bench/results/ablations.json``.

Usage::

    python bench/ablations.py [--plugins qlora,sft,fft] [--batches 3] [--batch 8] [--quick]
        [--variants NAME,NAME] [--tag T]
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

VARIANTS = {
    "ftx default": {},
    "+ activation checkpointing": {"checkpointing": True},
    "fp32 (no bf16 autocast)": {"autocast": False},
    "TRL's loss (LM head on every position)": {"trl_loss": True},
    "LoRA dropout 0.05": {"dropout": 0.05},
    "PEFT's LoRA forward": {"peft_forward": True},
    "frozen weights in bf16": {"bf16_frozen": True},
    "4-bit weights dequantised to bf16": {"dequant_bf16": True},
    "all proposed": {
        "bf16_frozen": True,
        "dequant_bf16": True,
    },
}
QLORA_ONLY = {"LoRA dropout 0.05", "PEFT's LoRA forward", "4-bit weights dequantised to bf16"}
NEEDS_FROZEN = {"frozen weights in bf16"}


class Captured(BaseException):
    """Raised from inside ``ftx run`` once the trainer is built, to stop before training."""


@contextlib.contextmanager
def applied(model: Any, toggles: dict[str, Any]):
    """Apply a variant's toggles to the model / TRL for the duration of one step."""
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    dropouts = []
    frozen = []
    states = []
    if toggles.get("dequant_bf16"):
        for param in model.parameters():
            state = getattr(param, "quant_state", None)
            if state is not None:
                states.append((state, state.dtype))
                state.dtype = torch.bfloat16
    if toggles.get("bf16_frozen"):
        frozen = frozen_float_params(model)
        for param in frozen:
            param.data = param.data.to(torch.bfloat16)
    if toggles.get("checkpointing"):
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if toggles.get("dropout"):
        for module in model.modules():
            per_adapter = getattr(module, "lora_dropout", None)
            if isinstance(per_adapter, torch.nn.ModuleDict):
                for key, original in per_adapter.items():
                    dropouts.append((per_adapter, key, original))
                    per_adapter[key] = torch.nn.Dropout(toggles["dropout"])
    lean = []
    if toggles.get("peft_forward"):  # ftx.lora_forward's per-layer forward set aside
        lean = [(m, vars(m).pop("forward")) for m in model.modules() if "forward" in vars(m)]
    try:
        yield
    finally:
        for module, forward in lean:
            module.forward = forward
        if toggles.get("checkpointing"):
            base.gradient_checkpointing_disable()
        for per_adapter, key, original in dropouts:
            per_adapter[key] = original
        for param in frozen:
            param.data = param.data.float()
        for state, dtype in states:
            state.dtype = dtype


def frozen_float_params(model: Any) -> list[Any]:
    """Frozen fp32 parameters that are not 4-bit packed (those a bf16 load would keep in bf16)."""
    import torch

    return [
        p
        for p in model.parameters()
        if not p.requires_grad
        and p.dtype == torch.float32
        and type(p).__name__ != "Params4bit"
        and getattr(p, "quant_state", None) is None
    ]


def worker(out_json: str, plugin: str, n_batches: int, variants: list[str], argv: list[str]):
    from ftx.process_env import configure_command_process

    configure_command_process()  # before torch loads, as the ftx command
    import ftx.runner

    captured: dict[str, Any] = {}
    original_build = ftx.runner.execution.build_trainer

    def build(run, pm, model, *args: Any, **kwargs: Any):
        trainer = original_build(run, pm, model, *args, **kwargs).trainer
        captured.update(trainer=trainer, model=model, run=run)
        raise Captured

    ftx.runner.execution.build_trainer = build
    from ftx.cli import cli

    with contextlib.suppress(Captured):
        cli(["run", *argv], prog_name="ftx", standalone_mode=False)
    import torch
    from trl import SFTTrainer

    trainer, model, run = captured["trainer"], captured["model"], captured["run"]
    model.train()
    bf16 = bool(run.train_args.get("bf16"))
    loader = iter(trainer.get_train_dataloader())
    batches = [next(loader) for _ in range(n_batches + 1)]
    times: dict[str, list[float]] = {v: [] for v in variants}
    losses: dict[str, list[float]] = {v: [] for v in variants}
    for i, batch in enumerate(batches):
        order = variants[i % len(variants) :] + variants[: i % len(variants)]
        for name in order:
            toggles = VARIANTS[name]
            autocast = bf16 and toggles.get("autocast", True)
            torch.manual_seed(1234 + i)  # same dropout masks wherever dropout is on
            with applied(model, toggles):
                start = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                    compute = SFTTrainer.compute_loss if toggles.get("trl_loss") else None
                    compute = compute or type(trainer).compute_loss
                    loss = compute(trainer, model, dict(batch))
                loss.backward()
                elapsed = time.perf_counter() - start
            model.zero_grad(set_to_none=True)
            if i:  # batch 0 warms every path up
                times[name].append(elapsed)
                losses[name].append(float(loss.detach()))
        print(f"batch {i}: {int(batch['labels'].numel())} positions", file=sys.stderr, flush=True)
    tokens = [
        int(b["attention_mask"].sum()) if "attention_mask" in b else b["input_ids"].numel()
        for b in batches[1:]
    ]
    trained = [int((b["labels"] != -100).sum()) for b in batches[1:]]
    result = {
        "plugin": plugin,
        "bf16": bf16,
        "tokens_per_batch": tokens,
        "trained_tokens_per_batch": trained,
        "variants": {
            name: {
                "step_s": [round(t, 3) for t in times[name]],
                "step_s_median": round(statistics.median(times[name]), 3),
                "mean_loss": round(statistics.mean(losses[name]), 5),
            }
            for name in variants
        },
    }
    Path(out_json).write_text(json.dumps(result, indent=2))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        n_variants = int(sys.argv[5])
        variants = sys.argv[6 : 6 + n_variants]
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), variants, sys.argv[6 + n_variants :])
        return
    from common import (
        MAIN_PY,
        bench_parser,
        cleanup,
        demo_data,
        demo_model,
        loadavg,
        log,
        markdown_table,
        ratio,
        require_ok,
        run_child,
        save_results,
        workdir,
        write_subset,
    )

    parser = bench_parser(__doc__, quick="1 batch per variant", ignore=("steps", "eval-limit"))
    parser.add_argument("--plugins", default="qlora,sft,fft")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--qlora-fp32", action="store_true", help="add a pure-fp32 qlora run")
    parser.add_argument("--workdir")
    parser.add_argument(
        "--variants", help="comma-separated variant names to run (default: all that apply)"
    )
    parser.add_argument("--tag", default="", help="suffix for the results file name")
    args = parser.parse_args()
    if args.quick:
        args.batches = 1
    work = workdir("ablations", args.workdir)
    model = demo_model()
    train, _ = demo_data()
    subset = write_subset(train, (args.batches + 1) * args.batch, work / "train.jsonl")
    load_start = loadavg()
    runs: list[tuple[str, str, list[str], list[str]]] = []
    for plugin in [p.strip() for p in args.plugins.split(",") if p.strip()]:
        names = [v for v in VARIANTS if plugin == "qlora" or v not in QLORA_ONLY]
        if plugin == "fft":  # nothing is frozen
            names = [v for v in names if v not in NEEDS_FROZEN and v != "all proposed"]
        if args.variants:  # ftx default always, as the reference
            wanted = {v.strip() for v in args.variants.split(",")}
            names = [v for v in names if v == "ftx default" or v in wanted]
        runs.append((plugin, plugin, names, []))
    if args.qlora_fp32:
        runs.append(
            (
                "qlora-fp32",
                "qlora",
                ["ftx default"],
                ["method.compute_dtype=float32", "train.bf16=false"],
            )
        )
    results = {}
    for label, plugin, names, sets in runs:
        out_json = work / f"{label}.json"
        run_args = [
            "--plugin",
            plugin,
            "--model",
            str(model),
            "--data",
            str(subset),
            "--output",
            str(work / label),
            "--overwrite",
            "--set",
            f"train.per_device_train_batch_size={args.batch}",
            *[x for s in sets for x in ("--set", s)],
        ]
        cmd = [
            str(MAIN_PY),
            __file__,
            "--worker",
            str(out_json),
            plugin,
            str(args.batches),
            str(len(names)),
            *names,
            *run_args,
        ]
        log(f"{label}: {len(names)} variants × {args.batches} batches (load {loadavg()[0]})")
        result = run_child(cmd, log_path=work / f"{label}.log", env={"OMP_WAIT_POLICY": ""})
        require_ok(result, f"ablation worker {label}")
        results[label] = json.loads(out_json.read_text())
    rows = []
    for label, data in results.items():
        ref = results.get(label.split("-")[0], data)["variants"]["ftx default"]
        for name, v in data["variants"].items():
            rows.append(
                [
                    label,
                    name if label == data["plugin"] else f"{name} ({label})",
                    v["step_s_median"],
                    ratio(v["step_s_median"], ref["step_s_median"]),
                    f"{v['mean_loss']:.4f}",
                ]
            )
    text = markdown_table(
        ["plugin", "variant", "fwd+bwd s (median)", "time vs ftx default", "mean loss"], rows
    )
    print(text)
    save_results(
        f"ablations{args.tag}",
        {
            "settings": vars(args),
            "results": results,
            "load_average_start": load_start,
            "load_average_end": loadavg(),
            "tables_markdown": text,
        },
    )
    cleanup(work, args.workdir)


if __name__ == "__main__":
    main()
