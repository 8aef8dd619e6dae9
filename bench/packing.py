"""Padding-free batches vs padded batches on variable-length data (goal: ≥ 1.5× tokens/s, same
loss within 2%).

The data (``--rows``, both by default), ``steps * batch`` rows each, lengths drawn uniformly
(seeded) so that a padded batch of 8 is about 40% padding:

* ``text``: plain-text rows cut from the demo conversations, 20–400 tokens, every token trained
  (the LM head, 49152 x 576 in SmolLM2, then scores every token: a cost packing cannot cut);
* ``chat``: multi-turn conversations of demo orders under the chat template, ~50–400 tokens,
  only the answers trained (what supervised fine-tuning data usually is).

Part A, the product path, for each of ``--plugins`` (default qlora and fft): ``ftx run --plugin
P --data varlen.jsonl --set data.packing=false`` and ``=true`` (both on ftx's ``ftx_sdpa``,
``ftx/attention.py``: packed rows example by example, short bf16 calls in fp32), each in its
own child process (order reversed in every other of ``--rounds``). Reported: tokens/s (real
tokens, from ``summary.json``: counted from the attention mask or the packed row, never
padding), the mean training loss and the largest per-step loss difference against padded (same
seed, same batches), wall time and the child's peak RSS.

Part B, why (``--no-micro`` skips it): one SmolLM2 in this process, bf16 autocast, every weight
trainable; for the same batches, one forward+backward (no optimizer step, so every variant sees
identical weights) with

* ``padded sdpa``: right-padded ``[batch, longest]``, transformers' sdpa with the padding mask;
* ``padded ftx_sdpa``: the same through ftx's ``ftx_sdpa`` (what ``data.packing=false`` runs on
  the CPU: rows of at most 192 tokens on the fp32 kernel);
* ``packed sdpa``: one ``[1, total]`` row, transformers' block-diagonal mask over
  ``total**2`` query/key pairs (what transformers' own sdpa does with a packed row);
* ``packed ftx_sdpa``: the same row through ``ftx_sdpa`` (what ``data.packing=true`` runs on
  sdpa): SDPA once per example (``is_causal=True``, no mask tensor), the analogue of
  flash-attention's varlen kernel.

Variants alternate batch by batch; median time per variant and the loss each computes.

Usage::

    python bench/packing.py [--steps 12] [--batch 8] [--plugins qlora,fft] [--rounds 1] [--quick]
        [--tag T]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from common import (
    bench_parser,
    cleanup,
    demo_data,
    demo_model,
    fmt_bytes,
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
)

MIN_LEN, MAX_LEN = 20, 400
CHAT_MIN_LEN = 60  # a one-turn demo chat with SmolLM2's system prompt is ~50 tokens


def make_varlen_data(target: Path, rows: int, tokenizer: Any, seed: int = 0) -> list[int]:
    """Write ``rows`` ``{"text": ...}`` rows of 20–400 tokens; return their token lengths."""
    train, _ = demo_data()
    stream = []
    for line in train.read_text().splitlines():
        turns = json.loads(line)["conversations"]
        stream.append(f"Customer: {turns[0]['value']}\nCode: {turns[1]['value']}\n")
    ids = tokenizer("".join(stream), add_special_tokens=False)["input_ids"]
    rng = random.Random(seed)
    out, lengths = [], []
    for _ in range(rows):
        # one token is left for the eos that ftx appends to a text row
        length = rng.randint(MIN_LEN, MAX_LEN) - 1
        start = rng.randrange(0, len(ids) - length)
        text = tokenizer.decode(ids[start : start + length])
        out.append(json.dumps({"text": text}))
        lengths.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 1)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(out) + "\n")
    return lengths


def make_varlen_chats(target: Path, rows: int, tokenizer: Any, seed: int = 0) -> list[int]:
    """Write ``rows`` multi-turn conversations of about 50–400 tokens under the chat template
    (demo orders as consecutive turns, at least one: only the answers are trained); return
    their lengths."""
    train, _ = demo_data()
    turns = [json.loads(line)["conversations"] for line in train.read_text().splitlines()]
    rng = random.Random(seed)

    def length(messages: list[dict[str, str]]) -> int:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    out, lengths = [], []
    for _ in range(rows):
        goal = rng.randint(CHAT_MIN_LEN, MAX_LEN)
        messages: list[dict[str, str]] = []
        while True:
            human, gpt = rng.choice(turns)
            longer = [
                *messages,
                {"role": "user", "content": human["value"]},
                {"role": "assistant", "content": gpt["value"]},
            ]
            if messages and length(longer) > goal:
                break
            messages = longer
        out.append(json.dumps({"messages": messages}))
        lengths.append(length(messages))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(out) + "\n")
    return lengths


ROW_KINDS = {
    "text": (make_varlen_data, "plain-text rows of 20–400 tokens, every token trained"),
    "chat": (make_varlen_chats, "multi-turn chats of ~50–400 tokens, only the answers trained"),
}


def padding_share(lengths: list[int], batch: int) -> float:
    """Fraction of a padded batch that is padding, over consecutive batches of ``lengths``."""
    padded = real = 0
    for i in range(0, len(lengths), batch):
        chunk = lengths[i : i + batch]
        padded += max(chunk) * len(chunk)
        real += sum(chunk)
    return 1 - real / padded


SIDES = {"padded": False, "packed": True}  # name: data.packing


def run_ftx(
    plugin: str, side: str, args: argparse.Namespace, ctx: dict[str, Any], tag: str
) -> dict:
    packing = SIDES[side]
    name = f"{plugin}-{side}{tag}"
    out = ctx["work"] / name
    cmd = ftx_run_command(
        plugin,
        model=ctx["model"],
        data=ctx["data"],
        out=out,
        steps=args.steps,
        batch=args.batch,
        sets=[
            f"data.max_length={MAX_LEN + 8}",
            f"data.packing={'true' if packing else 'false'}",
            "train.logging_steps=1",
        ],
    )
    result = run_child(cmd, log_path=ctx["work"] / f"{name}.log")
    require_ok(result, f"ftx run ({name})")
    prune_checkpoints(out)
    summary = read_json(out / "summary.json")
    losses = [
        json.loads(line)["loss"]
        for line in (out / "metrics.jsonl").read_text().splitlines()
        if '"loss"' in line
    ]
    result.update(
        packing=summary.get("packing"),
        training_attention=summary.get("training_attention"),
        tokens=summary.get("tokens"),
        train_time_s=summary.get("train_time_s"),
        tokens_per_s=summary.get("tokens_per_s"),
        train_loss=summary.get("train_loss"),
        step_losses=losses,
    )
    return result


# --- Part B: in-process A/B of the attention paths -------------------------------------------


def micro(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from ftx.allocator import keep_freed_memory
    from ftx.attention import register
    from ftx.data import PackingCollator, load_conversations, tokenize_dataset

    keep_freed_memory()  # as `ftx run` does on the CPU
    ours = register()
    tokenizer = ctx["tokenizer"]
    examples = tokenize_dataset(
        load_conversations(str(ctx["data"])), tokenizer, max_length=MAX_LEN + 8
    ).examples
    model = AutoModelForCausalLM.from_pretrained(
        str(ctx["model"]), dtype=torch.float32, attn_implementation="sdpa"
    )
    model.config.use_cache = False
    model.train()
    padded = PackingCollator(tokenizer.pad_token_id, padding_free=False)
    packed = PackingCollator(tokenizer.pad_token_id, padding_free=True)
    variants = {
        "padded sdpa": ("sdpa", padded),
        "padded ftx_sdpa": (ours, padded),
        "packed sdpa (block-diagonal mask)": ("sdpa", packed),
        "packed ftx_sdpa (per example)": (ours, packed),
    }
    times: dict[str, list[float]] = {v: [] for v in variants}
    losses: dict[str, list[float]] = {v: [] for v in variants}
    tokens = []
    names = list(variants)
    for i in range(args.micro_batches + 1):
        chunk = examples[i * args.batch : (i + 1) * args.batch]
        tokens.append(sum(len(e["input_ids"]) for e in chunk))
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            impl, collate = variants[name]
            model.set_attn_implementation(impl)
            batch = collate(chunk)
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model(**batch, use_cache=False).loss
            loss.backward()
            elapsed = time.perf_counter() - start
            model.zero_grad(set_to_none=True)
            if i:  # batch 0 warms up every path
                times[name].append(elapsed)
                losses[name].append(float(loss.detach()))
        log(f"micro batch {i}/{args.micro_batches}: {tokens[-1]} tokens")
    real = sum(tokens[1:])
    out = {}
    for name in names:
        total = sum(times[name])
        out[name] = {
            "step_s_median": round(statistics.median(times[name]), 3),
            "tokens_per_s": round(real / total, 1),
            "mean_loss": round(statistics.mean(losses[name]), 5),
            "losses": [round(x, 5) for x in losses[name]],
        }
    return out


def e2e_summary(runs: dict[str, list[dict]]) -> dict[str, Any]:
    """Per packed side: tokens/s ratio to padded, train-loss and largest per-step loss diffs."""
    pad_loss = _median(runs["padded"], "train_loss")
    out = {}
    for side in list(SIDES)[1:]:
        pairs = zip(runs["padded"][0]["step_losses"], runs[side][0]["step_losses"], strict=False)
        out[side] = {
            "tokens_per_s_ratio": ratio(
                _median(runs[side], "tokens_per_s"), _median(runs["padded"], "tokens_per_s")
            ),
            "train_loss_rel_diff": round(
                abs(_median(runs[side], "train_loss") - pad_loss) / pad_loss, 4
            ),
            "max_step_loss_rel_diff": round(max(abs(a - b) / abs(a) for a, b in pairs), 4),
        }
    return out


def _median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def e2e_table(runs: dict[str, list[dict]], summary: dict[str, Any]) -> str:
    rows = [
        [
            side,
            _median(results, "tokens"),
            _median(results, "train_time_s"),
            _median(results, "tokens_per_s"),
            summary.get(side, {}).get("tokens_per_s_ratio", 1.0),
            round(_median(results, "train_loss"), 4),
            f"{100 * summary.get(side, {}).get('train_loss_rel_diff', 0.0):.2f}%",
            f"{100 * summary.get(side, {}).get('max_step_loss_rel_diff', 0.0):.2f}%",
            _median(results, "wall_s"),
            fmt_bytes(_median(results, "peak_rss_bytes")),
        ]
        for side, results in runs.items()
    ]
    return markdown_table(
        [
            "batches",
            "real tokens",
            "train s",
            "tokens/s",
            "tokens/s vs padded (goal ≥ 1.5)",
            "train loss",
            "loss diff vs padded (goal ≤ 2%)",
            "largest step loss diff",
            "wall s",
            "peak RSS",
        ],
        rows,
    )


def main() -> None:
    parser = bench_parser(__doc__, quick="3 steps, 1 micro batch", ignore=("eval-limit",))
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--plugins", default="qlora,fft", help="ftx plugins run end to end")
    parser.add_argument("--rounds", type=int, default=1, help="padded/packed runs per side")
    parser.add_argument("--rows", default="text,chat", help="row kinds: text, chat or both")
    parser.add_argument("--micro-batches", type=int, default=4)
    parser.add_argument("--no-micro", action="store_true", help="skip part B")
    parser.add_argument("--no-e2e", action="store_true", help="skip part A")
    parser.add_argument("--workdir")
    parser.add_argument("--tag", default="", help="suffix for the results file name")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.micro_batches = 3, 1
    from ftx.models import load_tokenizer

    work = workdir("packing", args.workdir)
    model = demo_model()
    tokenizer = load_tokenizer(model)
    rows = max(args.steps, args.micro_batches + 1) * args.batch
    kinds = [k.strip() for k in args.rows.split(",") if k.strip()]
    datasets: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        make, description = ROW_KINDS[kind]
        lengths = make(work / f"varlen-{kind}.jsonl", rows, tokenizer)
        share = padding_share(lengths[: args.steps * args.batch], args.batch)
        datasets[kind] = {
            "description": description,
            "rows": rows,
            "tokens": sum(lengths),
            "mean_length": round(statistics.mean(lengths), 1),
            "padding_share_padded": round(share, 4),
        }
        log(f"{kind}: {rows} rows, {sum(lengths)} tokens, {100 * share:.0f}% padding when padded")
    load_start = loadavg()
    plugins = [p.strip() for p in args.plugins.split(",") if p.strip()]
    e2e: dict[str, dict[str, list[dict]]] = {}
    if not args.no_e2e:
        for kind in kinds:
            ctx = {"work": work, "model": model, "data": work / f"varlen-{kind}.jsonl"}
            for plugin in plugins:
                runs = e2e[f"{plugin} {kind}"] = {side: [] for side in SIDES}
                for r in range(args.rounds):
                    for side in list(SIDES) if r % 2 == 0 else list(SIDES)[::-1]:
                        log(f"ftx run {plugin} on {kind} rows: {side} (load {loadavg()[0]})")
                        runs[side].append(run_ftx(plugin, side, args, ctx, f"-{kind}-{r}"))
                        log(f"  {runs[side][-1]['tokens_per_s']} tokens/s")
    micro_kind = kinds[0]
    micro_ctx = {
        "model": model,
        "tokenizer": tokenizer,
        "data": work / f"varlen-{micro_kind}.jsonl",
    }
    micro_results = {} if args.no_micro else micro(args, micro_ctx)

    tables = []
    summary: dict[str, Any] = {}
    for key, runs in e2e.items():
        if all(runs.values()):
            plugin, kind = key.split()
            summary[key] = e2e_summary(runs)
            share = datasets[kind]["padding_share_padded"]
            tables.append(
                f"ftx run --plugin {plugin}, {datasets[kind]['description']}, {args.steps} steps"
                f" × batch {args.batch}, {100 * share:.0f}% padding when padded\n\n"
                + e2e_table(runs, summary[key])
            )
    if micro_results:
        base = micro_results["padded sdpa"]
        ours = micro_results["padded ftx_sdpa"]
        rows_b = [
            [
                name,
                r["step_s_median"],
                r["tokens_per_s"],
                ratio(r["tokens_per_s"], base["tokens_per_s"]),
                ratio(r["tokens_per_s"], ours["tokens_per_s"]),
                r["mean_loss"],
                f"{100 * abs(r['mean_loss'] - base['mean_loss']) / base['mean_loss']:.3f}%",
            ]
            for name, r in micro_results.items()
        ]
        tables.append(
            f"forward+backward, SmolLM2 bf16 autocast, {args.micro_batches} batches of "
            f"{args.batch} {micro_kind} rows\n\n"
            + markdown_table(
                [
                    "attention path",
                    "step s (median)",
                    "tokens/s",
                    "tokens/s vs padded sdpa",
                    "vs padded ftx_sdpa",
                    "mean loss",
                    "loss diff vs padded",
                ],
                rows_b,
            )
        )
    text = "\n\n".join(tables)
    print(text)
    save_results(
        f"packing{args.tag}",
        {
            "settings": {**vars(args), "min_len": MIN_LEN, "max_len": MAX_LEN},
            "data": datasets,
            "e2e": e2e,
            "summary": summary,
            "micro": micro_results,
            "load_average_start": load_start,
            "load_average_end": loadavg(),
            "tables_markdown": text,
        },
    )
    cleanup(work, args.workdir)


if __name__ == "__main__":
    main()
