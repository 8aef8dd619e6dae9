"""Per-method table: FFT, SFT and QLoRA through ftx on the same data and budget.

Each method runs ``ftx run --plugin NAME`` with its own defaults (learning rate, bf16 autocast
where the CPU supports it, no activation checkpointing on the CPU) on the first
``steps * batch`` demo rows, in its own child process. Reported per method: trainable
parameters (and their share), tokens/s (ftx's ``summary.json``: real tokens over training time),
the child's peak RSS (``os.wait4``: the whole command, export included), wall time, and the
held-out exact match scored by ``ftx eval`` (the base model is scored once as "before").
Ratios are against FFT. Results: ``bench/results/methods.json``.

Usage::

    python bench/methods.py [--steps 30] [--batch 8] [--eval-limit 40] [--quick]
                            [--plugins fft,sft,qlora]
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml
from common import (
    FTX,
    MAIN_DISTS,
    MAIN_PY,
    cleanup,
    count_tokens,
    demo_data,
    demo_model,
    fmt_bytes,
    ftx_eval,
    loadavg,
    log,
    markdown_table,
    package_versions,
    prune_checkpoints,
    ratio,
    read_json,
    require_ok,
    run_child,
    save_results,
    workdir,
    write_subset,
)


def run_method(plugin: str, args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    out = ctx["work"] / plugin
    cmd = [
        *FTX,
        "run",
        "--plugin",
        plugin,
        "--model",
        str(ctx["model"]),
        "--data",
        str(ctx["subset"]),
        "--output",
        str(out),
        "--overwrite",
        "--set",
        f"train.max_steps={args.steps}",
        "--set",
        f"train.per_device_train_batch_size={args.batch}",
    ]
    result = run_child(cmd, log_path=ctx["work"] / f"{plugin}.log")
    require_ok(result, f"ftx run --plugin {plugin}")
    prune_checkpoints(out)
    summary = read_json(out / "summary.json")
    result.update(
        plugin=plugin,
        trainable_params=summary.get("trainable_params"),
        total_params=summary.get("total_params"),
        tokens=summary.get("tokens"),
        train_time_s=summary.get("train_time_s"),
        tokens_per_s=summary.get("tokens_per_s"),
        final_loss=summary.get("final_loss"),
        learning_rate=(yaml.safe_load((out / "config.yaml").read_text()) or {})
        .get("train", {})
        .get("learning_rate"),
        settings={
            k: summary.get(k) for k in ("dtype", "bf16_autocast", "packing", "attn_implementation")
        },
    )
    result["heldout"] = ftx_eval(
        out / "model", ctx["heldout"], args.eval_limit, ctx["work"] / f"eval-{plugin}.log"
    )
    log(
        f"{plugin}: {result['tokens_per_s']} tokens/s, peak {fmt_bytes(result['peak_rss_bytes'])}, "
        f"exact {result['heldout']['score']:.3f}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--eval-limit", type=int, default=40)
    parser.add_argument("--plugins", default="fft,sft,qlora")
    parser.add_argument("--workdir")
    parser.add_argument("--quick", action="store_true", help="3 steps, 8 eval rows")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.eval_limit = 3, 8
    plugins = [p.strip() for p in args.plugins.split(",") if p.strip()]
    work = workdir("methods", args.workdir)
    model = demo_model()
    train, heldout = demo_data()
    subset = write_subset(train, args.steps * args.batch, work / "train.jsonl")
    ctx = {"work": work, "model": model, "subset": subset, "heldout": heldout}
    load_start = loadavg()
    log("scoring the base model")
    before = ftx_eval(model, heldout, args.eval_limit, work / "eval-base.log")
    results = {}
    for plugin in plugins:
        log(f"ftx run --plugin {plugin} (load {loadavg()[0]})")
        results[plugin] = run_method(plugin, args, ctx)
    ref = results.get("fft") or next(iter(results.values()))
    rows = []
    for plugin, r in results.items():
        share = r["trainable_params"] / r["total_params"] if r["total_params"] else None
        rows.append(
            [
                plugin,
                f"{r['trainable_params']:,} ({100 * share:.1f}%)",
                r["tokens_per_s"],
                ratio(r["tokens_per_s"], ref["tokens_per_s"]),
                fmt_bytes(r["peak_rss_bytes"]),
                ratio(r["peak_rss_bytes"], ref["peak_rss_bytes"]),
                r["train_time_s"],
                r["wall_s"],
                r["final_loss"],
                f"{before['score']:.3f} → {r['heldout']['score']:.3f}",
            ]
        )
    text = markdown_table(
        [
            "method",
            "trainable params",
            "tokens/s",
            "tokens/s vs fft",
            "peak RSS",
            "RSS vs fft",
            "train s",
            "wall s",
            "final loss",
            f"held-out exact (n={before['n']}) before → after",
        ],
        rows,
    )
    print(text)
    path = save_results(
        "methods",
        {
            "settings": {**vars(args), "train_rows": args.steps * args.batch},
            "data": count_tokens(subset, model),
            "base_model_heldout": before,
            "methods": results,
            "load_average_start": load_start,
            "load_average_end": loadavg(),
            "versions": package_versions(MAIN_PY, MAIN_DISTS),
            "tables_markdown": text,
        },
    )
    log(f"results: {path}")
    cleanup(work, args.workdir)


if __name__ == "__main__":
    main()
