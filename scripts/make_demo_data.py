"""Generate the built-in demo data set: coffee orders -> a made-up canonical order code.

Task. The user message is ``Order code: <a short natural-language coffee order>``; the answer is
the order in a compact code whose rules a model cannot guess:

* one item per drink, in the order the drinks are mentioned, separated by a space;
* an item is ``<quantity>x<size letter>-<DRINK>``: quantity in digits ("a", "an", "one", "1" are
  1), size S/M/L for small/medium/large and M when no size is said, drink in capitals without
  spaces in the singular ("iced teas" -> ICEDTEA);
* `` TOGO`` at the end when the order says "to go" (not for "for here").

``Order code: can I get two large lattes and a small iced tea to go?`` -> ``2xL-LATTE 1xS-ICEDTEA
TOGO``. With the SmolLM2 tokenizer answers are 6-31 tokens (median 17) and user messages 8-31
tokens (median 18), so CPU training and greedy eval are quick.

Output (fixed seed, deterministic): ``core/ftx/demo/train.jsonl`` (480 rows: one epoch at the
default batch of 8 is 60 steps, the demo's whole budget) and
``core/ftx/demo/heldout.jsonl`` (80 rows; no user message appears in both), in the seed's Vicuna
format ``{"id": ..., "conversations": [{"from": "human", ...}, {"from": "gpt", ...}]}``.

Measured with ``--measure`` (SmolLM2-135M-Instruct through ``ftx.models.resolve_model(None)``,
its own chat template, which injects its default system prompt; ftx's `tokenize_dataset` +
`PackingCollator`; exact match after stripping whitespace, greedy decoding, max_new_tokens 40,
stop at <|im_end|>, on all 80 held-out rows):

* baseline, before any training: 0/80 = 0.0% (it answers in prose: "I'm sorry ... as a chatbot");
* full fine-tune, fp32 weights under bf16 autocast, AdamW (lr 2e-4, no weight decay, 10% warmup
  then sqrt decay, grad-norm clip 1.0), batch 8, padded batches, use_cache=False:
  40 steps -> 80/80 = 100% (train loss 0.0007), 120 steps -> 80/80 = 100% (loss 0.0002).
  Loss is below 0.05 after about 20 steps.
* QLoRA through ``ftx run --plugin qlora`` (its defaults: lr 1e-3 cosine, r 16, 4-bit NF4,
  bf16 autocast), 60 steps of batch 8 (one epoch of the 480 training rows): 78/80 = 97.5%
  (train loss 0.03 by step 30).
* speed on this machine (2 CPU cores, shared with another engineer's jobs while measuring, so
  torch ran one thread): 9.4 s/step for the 40-step run (377 s), 5.9 s/step for the 120-step run
  (713 s). Unshared, two threads, bf16 autocast, batch 8 x 64 tokens: 2.3 s/step, so the 40-step
  budget is about 2 minutes of training.

Run: ``python scripts/make_demo_data.py`` (writes the two files; ``--check`` verifies that the
committed files are what the script generates; ``--measure [--steps 40] [--no-baseline]``
repeats the measurement above, which takes minutes).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

SEED = 1234
N_TRAIN = 480
N_HELDOUT = 80
OUT_DIR = Path(__file__).resolve().parent.parent / "core" / "ftx" / "demo"

DRINKS = [
    ("latte", "lattes"),
    ("mocha", "mochas"),
    ("espresso", "espressos"),
    ("cappuccino", "cappuccinos"),
    ("americano", "americanos"),
    ("tea", "teas"),
    ("iced tea", "iced teas"),
    ("cocoa", "cocoas"),
    ("smoothie", "smoothies"),
    ("lemonade", "lemonades"),
    ("macchiato", "macchiatos"),
    ("chai", "chais"),
    ("cortado", "cortados"),
    ("flat white", "flat whites"),
]
SIZES = {"small": "S", "medium": "M", "large": "L"}
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
OPENERS = [
    "can I get {items}{where}?",
    "I'd like {items}{where}, please.",
    "{items}{where}, thanks!",
    "could you make me {items}{where}?",
    "we need {items}{where}.",
    "please get {items}{where}.",
    "hi! {items}{where} please",
    "I want {items}{where}.",
    "give me {items}{where}.",
    "hello, {items}{where}.",
]


def quantity_words(rng: random.Random, qty: int, noun: str) -> str:
    if qty == 1:
        return rng.choice(["an" if noun[0] in "aeiou" else "a", "one", "1"])
    return rng.choice([NUMBER_WORDS[qty], NUMBER_WORDS[qty], str(qty)])


def make_order(rng: random.Random) -> tuple[str, str]:
    """One (user message, answer) pair."""
    n_items = rng.choices([1, 2, 3], weights=[3, 4, 3])[0]
    drinks = rng.sample(DRINKS, n_items)
    phrases, codes = [], []
    for singular, plural in drinks:
        qty = rng.choices([1, 2, 3, 4, 5, 6], weights=[5, 4, 3, 2, 1, 1])[0]
        size = rng.choice([None, "small", "medium", "large", "small", "large"])
        noun = singular if qty == 1 else plural
        words = [size, noun] if size else [noun]
        phrases.append(" ".join([quantity_words(rng, qty, words[0]), *words]))
        code = singular.replace(" ", "").upper()
        codes.append(f"{qty}x{SIZES[size] if size else 'M'}-{code}")
    items = phrases[0] if n_items == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    where = rng.choices(["", " to go", " for here"], weights=[5, 3, 2])[0]
    text = rng.choice(OPENERS).format(items=items, where=where)
    answer = " ".join(codes) + (" TOGO" if where == " to go" else "")
    return f"Order code: {text}", answer


def generate() -> tuple[list[dict], list[dict]]:
    """(train rows, held-out rows); deterministic; no user message in both."""
    rng = random.Random(SEED)
    seen: set[str] = set()
    pairs = []
    while len(pairs) < N_TRAIN + N_HELDOUT:
        question, answer = make_order(rng)
        if question not in seen:
            seen.add(question)
            pairs.append((question, answer))
    rows = [
        {
            "id": f"demo-{i:05d}",
            "conversations": [
                {"from": "human", "value": question},
                {"from": "gpt", "value": answer},
            ],
        }
        for i, (question, answer) in enumerate(pairs)
    ]
    return rows[N_HELDOUT:], rows[:N_HELDOUT]


def to_jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--check", action="store_true", help="verify the files, write nothing")
    parser.add_argument("--measure", action="store_true", help="baseline + fine-tune SmolLM2")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--packing", action="store_true", help="padding-free batches")
    parser.add_argument("--limit", type=int, default=None, help="score only N held-out rows")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline score")
    args = parser.parse_args(argv)
    if args.measure:
        measure(
            args.steps, args.batch_size, args.lr, args.packing, args.limit, not args.no_baseline
        )
        return 0
    train, heldout = generate()
    files = {"train.jsonl": to_jsonl(train), "heldout.jsonl": to_jsonl(heldout)}
    return write_or_check(files, args.out, check=args.check)


def write_or_check(files: dict[str, str], out: Path, *, check: bool) -> int:
    """Write ``{name: text}`` under `out`, or (`check`) report the files that differ; exit code."""
    if check:
        stale = [n for n, text in files.items() if _read(out / n) != text]
        for name in stale:
            print(f"{out / name} differs from what the script generates", file=sys.stderr)
        return 1 if stale else 0
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {out / name} ({text.count(chr(10))} rows)")
    return 0


def measure(
    steps: int, batch_size: int, lr: float, packing: bool, limit: int | None, baseline: bool
) -> None:
    """Baseline and fine-tuned exact match of SmolLM2 on the held-out file (slow: minutes)."""
    import time

    import torch
    from transformers import AutoModelForCausalLM

    from ftx.data import PackingCollator, load_conversations, tokenize_dataset
    from ftx.models import load_tokenizer, resolve_model

    torch.manual_seed(0)
    model_dir = resolve_model(None)
    tokenizer = load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    heldout = load_conversations(OUT_DIR / "heldout.jsonl")[:limit]
    if baseline:
        print(f"baseline exact match: {exact_match(model, tokenizer, heldout):.3f}", flush=True)
    if steps <= 0:
        return

    train = load_conversations(OUT_DIR / "train.jsonl")
    examples = tokenize_dataset(train, tokenizer, max_length=256).examples
    collate = PackingCollator(tokenizer.pad_token_id, padding_free=packing)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / steps) ** 0.5
    )
    order = list(range(len(examples)))
    random.Random(0).shuffle(order)
    model.train()
    start = time.time()
    for step in range(steps):
        picked = [examples[order[(step * batch_size + k) % len(order)]] for k in range(batch_size)]
        batch = collate(picked)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 10 == 0 or step == steps - 1:
            elapsed = time.time() - start
            print(
                f"step {step + 1} loss {loss.item():.4f} {elapsed / (step + 1):.2f} s/step",
                flush=True,
            )
    seconds = time.time() - start
    model.eval()
    score = exact_match(model, tokenizer, heldout)
    print(
        f"after {steps} steps (batch {batch_size}, lr {lr}, packing {packing}): exact match "
        f"{score:.3f}; {seconds / steps:.2f} s/step, {seconds:.0f} s training"
    )


def exact_match(model, tokenizer, convs, batch_size: int = 16) -> float:
    """Greedy generation of the last assistant turn; fraction equal after stripping."""
    import torch

    from ftx.data import prompt_for_generation

    stop = tokenizer.convert_tokens_to_ids("<|im_end|>")
    hits = 0
    for start in range(0, len(convs), batch_size):
        chunk = [prompt_for_generation(c, tokenizer) for c in convs[start : start + batch_size]]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(i)) + i for i, _ in chunk])
        mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i, _ in chunk])
        with torch.no_grad():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=40,
                do_sample=False,
                eos_token_id=stop,
                pad_token_id=tokenizer.pad_token_id,
            )
        for row, (_, reference) in zip(out[:, width:], chunk, strict=True):
            text = tokenizer.decode(row, skip_special_tokens=True).strip()
            hits += text == reference.strip()
        if start == 0:
            sample = tokenizer.decode(out[0, width:], skip_special_tokens=True).strip()
            print(f"  e.g. {sample!r} (expected {chunk[0][1]!r})", flush=True)
    return hits / len(convs)


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


if __name__ == "__main__":
    sys.exit(main())
