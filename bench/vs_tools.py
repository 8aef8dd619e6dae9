"""ftx against the tools a user would otherwise reach for, side by side in one run.

Measures, for the same model (SmolLM2-135M-Instruct), the same training rows (the first
``steps * batch`` demo rows: one epoch, so every tool trains on exactly the same rows once), the
same steps, batch, max length and learning-rate schedule:

* **ftx qlora vs the tutorial TRL script** (``bench/baselines/trl_qlora_tutorial.py``: SFTTrainer
  + PEFT + bitsandbytes as the tutorials write it, same learning rate and schedule as ftx);
* **ftx vs LLaMA-Factory 0.9.5** (its own venv, ``bench/.venv-llamafactory``): ``qlora`` vs
  LF ``lora`` + ``quantization_bit: 4``, ``fft`` vs LF ``full``, ``sft`` vs LF ``freeze``
  (as many top blocks as ftx sft's ``layers: auto`` trains); LF YAMLs in
  ``bench/llamafactory/``, each method at ftx's default learning rate (read from the installed
  plugins, so the comparison follows ftx's defaults).

For every contender (each in its own child process): wall time of the whole command (start-up,
loading, tokenising, training, saving), the tool's own ``train_runtime``, tokens/s (the subset's
tokens under the model's chat template, identical for all, over ``train_runtime``), the child's
peak RSS (``os.wait4``), CPU seconds, and held-out exact match scored by the *same* command,
``ftx eval DIR --data heldout.jsonl --metric exact --limit K``, with the base model's tokenizer.
Ratios are ftx / other (wall time, memory: lower is better; tokens/s: higher is better).

Every tool runs as a user runs it: the other tools with OpenMP's default wait policy, ftx with
the policy it picks itself (``ftx/openmp.py``: the default on an idle machine, PASSIVE when other
tasks compete; the run's ``summary.json`` says which). Run the benchmark on an otherwise idle
machine; ``--others-passive`` gives the other tools ``OMP_WAIT_POLICY=PASSIVE`` (what ftx picks
on a shared machine, where the default is up to 4.5x slower: ``bench/omp_wait_policy.py``).
LLaMA-Factory runs without gradient checkpointing (``disable_gradient_checkpointing: true``),
its fastest working CPU setting (``--lf-checkpointing on`` restores its default).

Usage::

    python bench/vs_tools.py [--steps 30] [--batch 8] [--eval-limit 40] [--quick]
                             [--only trl,llamafactory] [--workdir DIR] [--others-passive]

Contenders run in pairs (ftx and its counterpart back to back, the order alternating from pair
to pair) so that both sides of a ratio see similar load from other processes; the load
averages before and after each child are recorded. Results: ``bench/results/vs_tools.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from common import (
    BENCH,
    LF_VENV,
    MAIN_DISTS,
    MAIN_PY,
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
    package_versions,
    prune_checkpoints,
    ratio,
    read_json,
    require_ok,
    run_child,
    save_results,
    scoring_dir,
    trainer_runtime,
    workdir,
    write_subset,
)

# ftx plugin -> LLaMA-Factory mode (YAML in bench/llamafactory/).
PAIRS = {"qlora": "qlora", "fft": "full", "sft": "freeze"}
MODES = {mode: plugin for plugin, mode in PAIRS.items()}

# Run in the main venv: ftx's default learning rate per plugin (its `train_defaults` hook on the
# CPU), how many top blocks `sft`'s `layers: auto` trains on the model in argv[1], and whether
# ftx computes in bf16 on this CPU (its calibration): LLaMA-Factory gets the same precision.
FTX_DEFAULTS = """
import json, sys
from pathlib import Path
import ftx_fft, ftx_qlora, ftx_sft
from ftx.device import detect
from ftx_sft.selection import parse_layers
device = detect()
lrs = {m.__name__[4:]: m.train_defaults(device=device, objective="supervised")["learning_rate"]
       for m in (ftx_fft, ftx_qlora, ftx_sft)}
blocks = json.loads((Path(sys.argv[1]) / "config.json").read_text())["num_hidden_layers"]
print(json.dumps({"learning_rates": lrs, "sft_blocks": len(parse_layers("auto", blocks)),
                  "bf16": device.bf16}))
"""
SMOLLM_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def ftx_contender(plugin: str, args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    tool = "ftx"
    out = ctx["work"] / f"{tool}-{plugin}"
    cmd = ftx_run_command(
        plugin,
        model=ctx["model"],
        data=ctx["subset"],
        out=out,
        steps=args.steps,
        batch=args.batch,
        sets=[f"data.max_length={args.max_length}", f"train.seed={args.seed}"],
    )
    result = run_child(cmd, log_path=ctx["work"] / f"{tool}-{plugin}.log")
    require_ok(result, f"{tool} run --plugin {plugin}")
    summary = read_json(out / "summary.json")
    result.update(
        tool=tool,
        method=plugin,
        train_runtime_s=summary.get("train_time_s"),
        reported_tokens=summary.get("tokens"),
        trainable_params=summary.get("trainable_params"),
        final_loss=summary.get("final_loss"),
        settings={
            k: summary.get(k)
            for k in ("dtype", "bf16_autocast", "packing", "attn_implementation", "omp_wait_policy")
        },
        artifact=str(out / ("adapter" if plugin == "qlora" else "model")),
    )
    return result


def other_omp(args: argparse.Namespace) -> str:
    """OMP_WAIT_POLICY for the other tools' processes ("" = unset, as a user runs them)."""
    return "PASSIVE" if args.others_passive else ""


def trl_contender(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    out = ctx["work"] / "trl-tutorial"
    if out.exists():
        shutil.rmtree(out)
    cmd = [
        str(MAIN_PY),
        str(BENCH / "baselines" / "trl_qlora_tutorial.py"),
        "--model",
        str(ctx["model"]),
        "--data",
        str(ctx["subset"]),
        "--output",
        str(out),
        "--steps",
        str(args.steps),
        "--batch",
        str(args.batch),
        "--lr",
        str(ctx["learning_rates"]["qlora"]),
        "--max-length",
        str(args.max_length),
    ]
    env = {"OMP_WAIT_POLICY": other_omp(args)}
    result = run_child(cmd, log_path=ctx["work"] / "trl-tutorial.log", env=env)
    require_ok(result, "TRL tutorial script")
    state = trainer_runtime(out / "trainer_state.json")
    result.update(tool="trl-tutorial", method="qlora", artifact=str(out), **state)
    result["final_loss"] = _last_loss(read_json(out / "trainer_state.json").get("log_history", []))
    return result


def lf_contender(mode: str, args: argparse.Namespace, ctx: dict[str, Any]) -> dict:
    out = ctx["work"] / f"lf-{mode}"
    if out.exists():
        shutil.rmtree(out)
    config = yaml.safe_load((BENCH / "llamafactory" / f"{mode}.yaml").read_text())
    config.update(
        model_name_or_path=str(ctx["model"]),
        dataset_dir=str(ctx["lf_data"]),
        output_dir=str(out),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch,
        learning_rate=ctx["learning_rates"][MODES[mode]],
        cutoff_len=args.max_length,
        seed=args.seed,
    )
    config["bf16"] = bool(ctx["bf16"])  # the precision ftx chose on this CPU: the same work
    if mode == "freeze":
        config["freeze_trainable_layers"] = ctx["sft_blocks"]
    if args.lf_checkpointing == "off":
        config["disable_gradient_checkpointing"] = True
    yaml_path = ctx["work"] / f"lf-{mode}.yaml"
    yaml_path.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [str(LF_VENV / "bin" / "llamafactory-cli"), "train", str(yaml_path)]
    env = {"OMP_WAIT_POLICY": other_omp(args), "DISABLE_VERSION_CHECK": "1"}
    result = run_child(cmd, log_path=ctx["work"] / f"lf-{mode}.log", env=env)
    require_ok(result, f"llamafactory-cli train ({mode})")
    stats = trainer_runtime(out / "all_results.json")
    state = read_json(out / "trainer_state.json").get("log_history", [])
    result.update(
        tool="llamafactory",
        method=mode,
        artifact=str(out),
        final_loss=_last_loss(state),
        settings={
            "gradient_checkpointing": args.lf_checkpointing != "off",
            "bf16": config["bf16"],
        },
        **stats,
    )
    return result


def _last_loss(history: list[dict[str, Any]]) -> float | None:
    losses = [row["loss"] for row in history if "loss" in row]
    return round(float(losses[-1]), 4) if losses else None


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    work = workdir("vs-tools", args.workdir)
    model = demo_model()
    train, heldout = demo_data()
    rows = args.steps * args.batch
    subset = write_subset(train, rows, work / "data" / "train.jsonl")
    (work / "data" / "dataset_info.json").write_text(
        json.dumps(
            {
                "demo_subset": {
                    "file_name": "train.jsonl",
                    "formatting": "sharegpt",
                    "columns": {"messages": "conversations"},
                }
            }
        )
    )
    tokens = count_tokens(subset, model)
    log(f"work dir {work}; {rows} training rows, {tokens['tokens']} tokens")
    defaults = subprocess.run(
        [str(MAIN_PY), "-c", FTX_DEFAULTS, str(model)], capture_output=True, text=True, check=True
    )
    return {
        **json.loads(defaults.stdout),
        "work": work,
        "model": model,
        "subset": subset,
        "heldout": heldout,
        "lf_data": work / "data",
        "tokens": tokens,
    }


def schedule(only: set[str], methods: set[str]) -> list[tuple[str, str]]:
    """(tool, method) in run order: pairs back to back, ftx first in every other pair."""
    order: list[tuple[str, str]] = []
    if "trl" in only and "qlora" in methods:
        order += [("trl", "qlora"), ("ftx", "qlora")]
    if "llamafactory" in only:
        pairs = [(p, m) for p, m in (("qlora", "qlora"), ("fft", "full"), ("sft", "freeze"))]
        pairs = [pair for pair in pairs if pair[0] in methods]
        for i, (plugin, mode) in enumerate(pairs):
            pair = [("ftx", plugin), ("llamafactory", mode)]
            order += pair if i % 2 else pair[::-1]
    seen: set[tuple[str, str]] = set()
    return [c for c in order if not (c in seen or seen.add(c))]


def score(result: dict[str, Any], ctx: dict[str, Any], limit: int) -> None:
    name = f"{result['tool']}-{result['method']}"
    target = scoring_dir(Path(result["artifact"]), ctx["model"], ctx["work"] / "score" / name)
    result["heldout"] = ftx_eval(target, ctx["heldout"], limit, ctx["work"] / f"eval-{name}.log")
    log(f"{name}: held-out exact {result['heldout']['score']:.3f}")


def finish(result: dict[str, Any], tokens: int) -> None:
    runtime = result.get("train_runtime_s")
    result["tokens"] = tokens
    result["tokens_per_s"] = round(tokens / runtime, 1) if runtime else None


def comparison_rows(results: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    wanted = [("qlora", "trl", "qlora")] + [
        (plugin, "llamafactory", mode) for plugin, mode in PAIRS.items()
    ]
    for plugin, tool, method in wanted:
        ours, theirs = results.get(("ftx", plugin)), results.get((tool, method))
        if ours and theirs:
            rows.append(
                {
                    "ftx": f"ftx {plugin}",
                    "other": f"{tool} {method}",
                    "wall_ratio": ratio(ours["wall_s"], theirs["wall_s"]),
                    "train_time_ratio": ratio(ours["train_runtime_s"], theirs["train_runtime_s"]),
                    "tokens_per_s_ratio": ratio(ours["tokens_per_s"], theirs["tokens_per_s"]),
                    "peak_rss_ratio": ratio(ours["peak_rss_bytes"], theirs["peak_rss_bytes"]),
                    "cpu_s_ratio": ratio(
                        ours["cpu_user_s"] + ours["cpu_sys_s"],
                        theirs["cpu_user_s"] + theirs["cpu_sys_s"],
                    ),
                    "ftx_exact": ours["heldout"]["score"],
                    "other_exact": theirs["heldout"]["score"],
                }
            )
    return rows


def print_tables(rows: list[dict[str, Any]], per_tool: list[dict[str, Any]]) -> str:
    detail = markdown_table(
        [
            "contender",
            "wall s",
            "train s",
            "tokens/s",
            "peak RSS",
            "CPU s",
            "final loss",
            "held-out exact",
            "load (1 min) before→after",
        ],
        [
            [
                f"{r['tool']} {r['method']}",
                r["wall_s"],
                r.get("train_runtime_s"),
                r.get("tokens_per_s"),
                fmt_bytes(r["peak_rss_bytes"]),
                round(r["cpu_user_s"] + r["cpu_sys_s"], 1),
                r.get("final_loss"),
                f"{r['heldout']['score']:.3f} ({r['heldout']['correct']}/{r['heldout']['n']})",
                f"{r['load_before'][0]}→{r['load_after'][0]}",
            ]
            for r in per_tool
        ],
    )
    ratios = markdown_table(
        [
            "ftx vs",
            "wall time ratio",
            "train time ratio",
            "tokens/s ratio",
            "peak RSS ratio",
            "CPU time ratio",
            "held-out exact ftx / other",
        ],
        [
            [
                f"{r['ftx']} vs {r['other']}",
                r["wall_ratio"],
                r["train_time_ratio"],
                r["tokens_per_s_ratio"],
                r["peak_rss_ratio"],
                r["cpu_s_ratio"],
                f"{r['ftx_exact']:.3f} / {r['other_exact']:.3f}",
            ]
            for r in rows
        ],
    )
    text = f"{detail}\n\n{ratios}"
    print(text)
    return text


def main() -> None:
    parser = bench_parser(__doc__, quick="smoke run: 3 steps, 8 eval rows")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--eval-limit", type=int, default=40)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--only", default="trl,llamafactory", help="trl, llamafactory or both")
    parser.add_argument("--workdir", help="keep outputs here (default: a fresh /tmp dir)")
    parser.add_argument("--methods", default="qlora,fft,sft", help="ftx plugins to compare")
    parser.add_argument("--tag", default="", help="suffix for the results file name")
    parser.add_argument("--seed", type=int, default=42, help="ftx and LLaMA-Factory (not TRL)")
    parser.add_argument(
        "--lf-checkpointing",
        choices=("on", "off"),
        default="off",
        help="LLaMA-Factory gradient checkpointing (its default is on; off is faster on CPU)",
    )
    parser.add_argument(
        "--others-passive",
        action="store_true",
        help="run the TRL script and LLaMA-Factory with OMP_WAIT_POLICY=PASSIVE (default: unset, "
        "as a user runs them; bench/omp_wait_policy.py measures what the variable is worth)",
    )
    args = parser.parse_args()
    if args.quick:
        args.steps, args.eval_limit = 3, 8
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    if "llamafactory" in only and not (LF_VENV / "bin" / "llamafactory-cli").exists():
        sys.exit(
            f"LLaMA-Factory venv not found at {LF_VENV}; create it with:\n"
            f"  python -m venv {LF_VENV} &&\n"
            f"  {LF_VENV}/bin/pip install llamafactory==0.9.5 bitsandbytes\n"
            "or pass --only trl"
        )
    ctx = prepare(args)
    load_start = loadavg()
    results: dict[tuple[str, str], dict[str, Any]] = {}
    methods = {m.strip() for m in args.methods.split(",") if m.strip()}
    for tool, method in schedule(only, methods):
        log(f"training: {tool} {method} (load {loadavg()[0]})")
        if tool == "ftx":
            result = ftx_contender(method, args, ctx)
        elif tool == "trl":
            result = trl_contender(args, ctx)
        else:
            result = lf_contender(method, args, ctx)
        finish(result, ctx["tokens"]["tokens"])
        prune_checkpoints(ctx["work"])
        results[(tool, method)] = result
        log(f"  wall {result['wall_s']:.0f} s, peak RSS {fmt_bytes(result['peak_rss_bytes'])}")
    for result in results.values():
        score(result, ctx, args.eval_limit)
    per_tool = list(results.values())
    rows = comparison_rows(results)
    text = print_tables(rows, per_tool)
    save_results(
        f"vs_tools{args.tag}",
        {
            "settings": {
                "steps": args.steps,
                "batch": args.batch,
                "train_rows": args.steps * args.batch,
                "max_length": args.max_length,
                "eval_limit": args.eval_limit,
                "learning_rates": ctx["learning_rates"],
                "sft_blocks_trained": ctx["sft_blocks"],
                "lr_schedule": f"cosine, 5% linear warmup, weight decay 0, seed {args.seed}",
                "lf_gradient_checkpointing": args.lf_checkpointing,
                "other_tools_omp_wait_policy": other_omp(args) or "unset",
                "workdir": str(ctx["work"]),
            },
            "data": ctx["tokens"],
            "versions": {
                "main": package_versions(MAIN_PY, MAIN_DISTS),
                "llamafactory": package_versions(
                    LF_VENV / "bin" / "python", (*MAIN_DISTS, "llamafactory")
                )
                if "llamafactory" in only
                else {},
            },
            "load_average_start": load_start,
            "load_average_end": loadavg(),
            "contenders": per_tool,
            "comparisons": [rows],
            "tables_markdown": text,
        },
    )
    cleanup(ctx["work"], args.workdir)


if __name__ == "__main__":
    main()
