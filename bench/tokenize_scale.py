"""Tokenisation at scale: ftx's data path against a plain batched chat-template pass, and a
second run on the same rows served from ftx's token cache.

The data: ``--rows`` (default 200,000) chat rows in OpenAI ``messages`` format, 1–3 turns of
demo orders each, a system message on a third of them (seeded; written once to
``$TMPDIR/ftx-bench-tokenize_scale/ROWS.jsonl``, beside the children's logs). Each variant runs
in its own child process (so its peak RSS is its own), all on SmolLM2's tokenizer, side by side
in one run:

* ``plain``: ``json.loads`` of every line, then per 1,000 rows
  ``tokenizer.apply_chat_template(batch, tokenize=False)`` and one batched fast-tokenizer call,
  keeping every row's ids (no labels, no truncation): the yardstick;
* ``ftx first``: ftx's own path, what ``ftx run`` does between reading the rows and training —
  normalise to conversations, render, tokenise with assistant-only labels, truncate, build the
  trainer's dataset — with an empty token cache (``$FTX_CACHE`` in a temporary folder);
* ``ftx cached``: the same call again in a new process: the cache's hit.

Reported per variant: the tokenisation seconds (rows in memory → trainer-ready dataset, timed
inside the child), the child's wall time and peak RSS, and the ratios ftx first / plain and ftx
cached / plain. The goal of issue #25: first ≤ 1.2× plain's time with a lower peak memory, and a
second run that starts training within seconds.

Usage::

    python bench/tokenize_scale.py [--rows 200000] [--quick]
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import bench_parser, demo_data, log, run_child, save_results

SYSTEM = "You turn coffee-shop orders into order codes."


def write_rows(rows: int, target: Path) -> Path:
    """``rows`` seeded multi-turn conversations built from the demo's orders."""
    if target.exists():
        return target
    train, _ = demo_data()
    pairs = []
    for line in train.read_text().splitlines():
        turns = json.loads(line)["conversations"]
        pairs.append((turns[0]["value"], turns[1]["value"]))
    rng = random.Random(0)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w") as out:
        for i in range(rows):
            messages = [{"role": "system", "content": SYSTEM}] if i % 3 == 0 else []
            for user, answer in rng.sample(pairs, rng.randint(1, 3)):
                messages += [
                    {"role": "user", "content": user},
                    {"role": "assistant", "content": answer},
                ]
            out.write(json.dumps({"messages": messages}) + "\n")
    return target


def child_plain(data: Path, model: Path) -> dict[str, Any]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    rows = [json.loads(line)["messages"] for line in data.open()]
    start = time.perf_counter()
    ids: list[list[int]] = []
    for i in range(0, len(rows), 1000):
        texts = tokenizer.apply_chat_template(rows[i : i + 1000], tokenize=False)
        ids += tokenizer(texts, add_special_tokens=False)["input_ids"]
    return {"tokenise_s": time.perf_counter() - start, "rows": len(ids)}


def child_ftx(data: Path, model: Path) -> dict[str, Any]:
    from ftx.data import load_conversations
    from ftx.data.token_cache import tokenized_dataset
    from ftx.models import load_tokenizer
    from ftx.objectives.supervised import tokenize_rows

    tokenizer = load_tokenizer(model)
    convs = load_conversations(str(data))
    settings = {"max_length": 512, "template": "auto", "train_on": "assistant"}
    start = time.perf_counter()
    dataset, stats = tokenized_dataset(
        convs,
        tokenizer,
        settings,
        objective="supervised",
        tokenize=lambda rows: tokenize_rows(rows, tokenizer, settings),
    )
    return {
        "tokenise_s": time.perf_counter() - start,
        "rows": len(dataset),
        "token_cache": stats.get("token_cache"),
    }


def main() -> None:
    parser = bench_parser(__doc__ or "", quick="20,000 rows")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--child", choices=("plain", "ftx"), help=argparse_hidden())
    parser.add_argument("--data", type=Path, help=argparse_hidden())
    parser.add_argument("--out", type=Path, help=argparse_hidden())
    parser.add_argument("--model", type=Path, help=argparse_hidden())
    args = parser.parse_args()
    if args.child:
        child = child_plain if args.child == "plain" else child_ftx
        args.out.write_text(json.dumps(child(args.data, args.model)))
        return
    rows = 20_000 if args.quick else args.rows
    scratch = Path(tempfile.gettempdir()) / "ftx-bench-tokenize_scale"
    data = write_rows(rows, scratch / f"{rows}.jsonl")
    # The model is converted once in a child of its own: this process stays small, so the
    # children's peak RSS (which starts from their parent's at fork) is theirs.
    where = scratch / "model.txt"
    warm = [
        sys.executable,
        "-c",
        f"from common import demo_model; open({str(where)!r}, 'w').write(str(demo_model()))",
    ]
    if run_child(warm, log_path=scratch / "model.log", cwd=Path(__file__).parent)["rc"]:
        sys.exit(f"converting the demo model failed: see {scratch}/model.log")
    model = where.read_text()
    cache = Path(tempfile.mkdtemp(prefix="ftx-token-cache-"))
    results: dict[str, Any] = {}
    try:
        for name, mode in (("plain", "plain"), ("ftx first", "ftx"), ("ftx cached", "ftx")):
            out = cache / f"{mode}-{len(results)}.json"
            cmd = [sys.executable, __file__, "--child", mode, "--data", str(data), "--model", model]
            run = run_child(
                [*cmd, "--out", str(out)],
                log_path=scratch / f"{len(results)}.log",
                env={"FTX_CACHE": str(cache / "cache"), "HF_HUB_OFFLINE": "1"},
            )
            if run["rc"] != 0:
                sys.exit(f"{name} failed: see {run['log']}")
            results[name] = {**json.loads(out.read_text()), **run}
            log(
                f"{name:11s} tokenise {results[name]['tokenise_s']:7.2f} s  wall "
                f"{run['wall_s']:7.2f} s  peak RSS {run['peak_rss_bytes'] / 2**30:.2f} GiB"
            )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    plain = results["plain"]
    for name in ("ftx first", "ftx cached"):
        r = results[name]
        log(
            f"{name} / plain: tokenise {r['tokenise_s'] / plain['tokenise_s']:.2f}x, "
            f"peak RSS {r['peak_rss_bytes'] / plain['peak_rss_bytes']:.2f}x"
        )
    save_results("tokenize_scale", {"rows": rows, "variants": results})


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
