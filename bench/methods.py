"""Per-method table: FFT, SFT and QLoRA through ftx on the same data and budget.

Each method runs ``ftx run --plugin NAME`` with its own defaults (learning rate, bf16 autocast
where the CPU supports it, no activation checkpointing on the CPU) on the first
``steps * batch`` demo rows, in its own child process. Reported per method: trainable
parameters (and their share), tokens/s (ftx's ``summary.json``: real tokens over training time),
the child's peak RSS (``os.wait4``: the whole command, export included), wall time, and the
held-out exact match scored by ``ftx eval`` (the base model is scored once as "before").
Ratios are against FFT. ``--variant "LABEL=PLUGIN:section.key=value,..."`` adds a run of a
plugin with other settings, reported against that plugin's defaults in a second table (e.g.
``"fft fp32=fft:train.bf16=false"``: what bf16 autocast buys full fine-tuning on this CPU).
Results: ``bench/results/methods.json``.

Usage::

    python bench/methods.py [--steps 30] [--batch 8] [--eval-limit 40] [--quick]
                            [--plugins fft,sft,qlora] [--variant LABEL=PLUGIN:SETS]...
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml
from common import (
    bench_parser,
    cleanup,
    count_tokens,
    demo_data,
    demo_model,
    fmt_bytes,
    ftx_eval,
    ftx_run_command,
    loadavg,
    log,
    markdown_table,
    prune_checkpoints,
    ratio,
    read_json,
    require_ok,
    run_child,
    save_results,
    workdir,
    write_subset,
)


def parse_variant(text: str) -> tuple[str, str, list[str]]:
    """``"LABEL=PLUGIN:a.b=1,c.d=2"`` -> ``(LABEL, PLUGIN, ["a.b=1", "c.d=2"])``."""
    label, _, spec = text.partition("=")
    plugin, _, sets = spec.partition(":")
    if not label or not plugin:
        raise SystemExit(f"--variant {text!r}: expected LABEL=PLUGIN:section.key=value,...")
    return label.strip(), plugin.strip(), [x.strip() for x in sets.split(",") if x.strip()]


def run_method(
    label: str, plugin: str, sets: list[str], args: argparse.Namespace, ctx: dict[str, Any]
) -> dict[str, Any]:
    out = ctx["work"] / label.replace(" ", "-")
    cmd = ftx_run_command(
        plugin,
        model=ctx["model"],
        data=ctx["subset"],
        out=out,
        steps=args.steps,
        batch=args.batch,
        sets=sets,
    )
    result = run_child(cmd, log_path=out.with_suffix(".log"))
    require_ok(result, f"ftx run ({label})")
    prune_checkpoints(out)
    summary = read_json(out / "summary.json")
    result.update(
        label=label,
        plugin=plugin,
        sets=sets,
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
            k: summary.get(k)
            for k in ("dtype", "bf16_autocast", "packing", "attn_implementation", "omp_wait_policy")
        },
    )
    result["heldout"] = ftx_eval(
        out / "model", ctx["heldout"], args.eval_limit, out.with_name(f"eval-{out.name}.log")
    )
    log(
        f"{label}: {result['tokens_per_s']} tokens/s, peak {fmt_bytes(result['peak_rss_bytes'])}, "
        f"exact {result['heldout']['score']:.3f}"
    )
    return result


def main() -> None:
    parser = bench_parser(__doc__, quick="3 steps, 8 eval rows")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--eval-limit", type=int, default=40)
    parser.add_argument("--plugins", default="fft,sft,qlora")
    parser.add_argument("--workdir")
    parser.add_argument("--tag", default="", help="suffix for the results file name")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help='"LABEL=PLUGIN:section.key=value,...": a plugin run with other settings',
    )
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variant]
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
        results[plugin] = run_method(plugin, plugin, [], args, ctx)
    others = {}
    for label, plugin, sets in variants:
        log(f"ftx run --plugin {plugin} {' '.join(sets)} (load {loadavg()[0]})")
        others[label] = run_method(label, plugin, sets, args, ctx)
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
    if others:
        text += "\n\n" + variant_table(others, results, before["n"])
    print(text)
    save_results(
        f"methods{args.tag}",
        {
            "settings": {**vars(args), "train_rows": args.steps * args.batch},
            "data": count_tokens(subset, model),
            "base_model_heldout": before,
            "methods": results,
            "variants": others,
            "load_average_start": load_start,
            "load_average_end": loadavg(),
            "tables_markdown": text,
        },
    )
    cleanup(work, args.workdir)


def variant_table(
    others: dict[str, dict[str, Any]], defaults: dict[str, dict[str, Any]], n: int
) -> str:
    """Each variant against its plugin's run with the defaults (ratios: variant / default)."""
    rows = []
    for label, r in others.items():
        base = defaults.get(r["plugin"], {})
        rows.append(
            [
                label,
                " ".join(r["sets"]),
                r["tokens_per_s"],
                ratio(r["tokens_per_s"], base.get("tokens_per_s")),
                ratio(r["peak_rss_bytes"], base.get("peak_rss_bytes")),
                r["final_loss"],
                f"{r['heldout']['score']:.3f} vs {base['heldout']['score']:.3f}" if base else "",
            ]
        )
    return markdown_table(
        [
            "variant",
            "settings",
            "tokens/s",
            "tokens/s vs default",
            "peak RSS vs default",
            "final loss",
            f"held-out exact (n={n}) variant vs default",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
