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
* ``ftx num_proc=1`` and ``ftx num_proc=2``: the same without render workers and with two
  (`ftx.data.render_workers`; ``auto`` picks one of them by the core count), each into an
  empty cache of its own, to show what the workers add on this machine;
* ``ftx cached``: the same call again in a new process: the cache's hit.

Reported per variant: the tokenisation seconds (rows in memory → trainer-ready dataset, timed
inside the child), the child's wall time and peak RSS, the peak memory of the child and its
render workers together (the sum of their proportional set sizes, sampled every 20 ms: a forked
worker's RSS counts the pages it shares with its parent, its PSS a share of them), and the
ratios to plain. The goal of issue #25: first ≤ 1.2× plain's time with a lower peak memory, and a
second run that starts training within seconds.

Usage::

    python bench/tokenize_scale.py [--rows 200000] [--quick]
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import bench_parser, demo_data, log, run_child, save_results

SYSTEM = "You turn coffee-shop orders into order codes."
# name, child, data.num_proc, token cache folder (the one-process variant has its own: a miss)
VARIANTS = (
    ("plain", "plain", "auto", "cache"),
    ("ftx first", "ftx", "auto", "cache"),
    ("ftx num_proc=1", "ftx", "1", "cache-1"),
    ("ftx num_proc=2", "ftx", "2", "cache-2"),
    ("ftx cached", "ftx", "auto", "cache"),
)


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


class TreeMemory:
    """The peak, over the ``with`` block, of this process's and its children's summed
    proportional set size (``/proc/PID/smaps_rollup``), sampled every 20 ms in a thread."""

    def __enter__(self) -> TreeMemory:
        import threading

        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, _tree_pss())
            if self._stop.wait(0.02):
                return


def _tree_pss() -> int:
    pids = [os.getpid()]
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            pids += [int(p) for p in (task / "children").read_text().split()]
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def child_plain(data: Path, model: Path, num_proc: str) -> dict[str, Any]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    with TreeMemory() as memory:
        rows = [json.loads(line)["messages"] for line in data.open()]
        start = time.perf_counter()
        ids: list[list[int]] = []
        for i in range(0, len(rows), 1000):
            texts = tokenizer.apply_chat_template(rows[i : i + 1000], tokenize=False)
            ids += tokenizer(texts, add_special_tokens=False)["input_ids"]
        seconds = time.perf_counter() - start
    return {"tokenise_s": seconds, "rows": len(ids), "peak_tree_pss_bytes": memory.peak}


def child_ftx(data: Path, model: Path, num_proc: str) -> dict[str, Any]:
    from ftx.data import load_conversations
    from ftx.data.token_cache import tokenized_dataset
    from ftx.models import load_tokenizer
    from ftx.objectives.supervised import tokenize_rows

    tokenizer = load_tokenizer(model)
    settings = {"max_length": 512, "template": "auto", "train_on": "assistant"}
    with TreeMemory() as memory:
        convs = load_conversations(str(data))
        start = time.perf_counter()
        dataset, stats = tokenized_dataset(
            convs,
            tokenizer,
            settings,
            objective="supervised",
            tokenize=lambda rows: tokenize_rows(
                rows, tokenizer, {**settings, "num_proc": num_proc}
            ),
        )
        seconds = time.perf_counter() - start
    return {
        "tokenise_s": seconds,
        "rows": len(dataset),
        "token_cache": stats.get("token_cache"),
        "peak_tree_pss_bytes": memory.peak,
    }


def main() -> None:
    parser = bench_parser(__doc__ or "", quick="20,000 rows")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--child", choices=("plain", "ftx"), help=argparse_hidden())
    parser.add_argument("--data", type=Path, help=argparse_hidden())
    parser.add_argument("--out", type=Path, help=argparse_hidden())
    parser.add_argument("--model", type=Path, help=argparse_hidden())
    parser.add_argument("--num-proc", default="auto", help=argparse_hidden())
    args = parser.parse_args()
    if args.child:
        child = child_plain if args.child == "plain" else child_ftx
        args.out.write_text(json.dumps(child(args.data, args.model, args.num_proc)))
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
        for name, mode, num_proc, store in VARIANTS:
            out = cache / f"{mode}-{len(results)}.json"
            cmd = [sys.executable, __file__, "--child", mode, "--data", str(data), "--model", model]
            run = run_child(
                [*cmd, "--num-proc", num_proc, "--out", str(out)],
                log_path=scratch / f"{len(results)}.log",
                env={"FTX_CACHE": str(cache / store), "HF_HUB_OFFLINE": "1"},
            )
            if run["rc"] != 0:
                sys.exit(f"{name} failed: see {run['log']}")
            results[name] = {**json.loads(out.read_text()), **run}
            log(
                f"{name:15s} tokenise {results[name]['tokenise_s']:7.2f} s  wall "
                f"{run['wall_s']:7.2f} s  peak RSS {run['peak_rss_bytes'] / 2**30:.2f} GiB  "
                f"peak PSS with workers {results[name]['peak_tree_pss_bytes'] / 2**30:.2f} GiB"
            )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    plain = results["plain"]
    for name in [v[0] for v in VARIANTS[1:]]:
        r = results[name]
        log(
            f"{name} / plain: tokenise {r['tokenise_s'] / plain['tokenise_s']:.2f}x, "
            f"peak RSS {r['peak_rss_bytes'] / plain['peak_rss_bytes']:.2f}x, peak PSS "
            f"{r['peak_tree_pss_bytes'] / plain['peak_tree_pss_bytes']:.2f}x"
        )
    save_results("tokenize_scale", {"rows": rows, "variants": results})


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
