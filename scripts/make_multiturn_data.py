"""Generate a harder task for budget measurements: the demo's order code, built over a chat.

Task. A customer orders coffee over 3-6 user turns — a first order, added drinks, changes
("actually, make the latte large", "change the teas to three", "drop the mocha", "oh, and it's
to go") — each answered by a short acknowledgement that does *not* repeat the order ("Sure.",
"Noted!"). The last user turn asks for the order code, whose rules are the demo's
(``scripts/make_demo_data.py``: ``<qty>x<S|M|L>-<DRINK>`` per drink, in the order the drinks were
first ordered, `` TOGO`` when the order is to go), applied to the order *as it stands after every
change*. So the answer depends on details from several earlier turns; a model that reads only
the first or the last one gets it wrong. Only the last assistant turn is scored (exact match);
the acknowledgements are trained too (``data.train_on: assistant``).

Output (fixed seed, deterministic): ``bench/data/multiturn/train.jsonl`` (320 conversations:
one epoch at batch 8 is 40 steps) and ``bench/data/multiturn/heldout.jsonl`` (40; no
conversation in both), in the demo's Vicuna format.

Run: ``python scripts/make_multiturn_data.py`` (``--check`` verifies the committed files).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_demo_data as demo  # the demo's drinks, sizes and file writing

SEED = 4321
N_TRAIN = 320
N_HELDOUT = 40
OUT_DIR = Path(__file__).resolve().parent.parent / "bench" / "data" / "multiturn"
ACKS = ["Sure.", "Noted!", "Okay.", "Got it.", "Sure thing.", "Alright."]
ASK_CODE = [
    "that's all. What's the order code?",
    "that's everything, order code please.",
    "done! Can I have the order code?",
    "ok, what's my order code?",
]


def drink_phrase(rng: random.Random, qty: int, size: str | None, drink: tuple[str, str]) -> str:
    noun = drink[0] if qty == 1 else drink[1]
    words = [size, noun] if size else [noun]
    return " ".join([demo.quantity_words(rng, qty, words[0]), *words])


def new_item(rng: random.Random, taken: list[tuple[str, str]]) -> dict:
    drink = rng.choice([d for d in demo.DRINKS if d not in taken])
    qty = rng.choices([1, 2, 3, 4], weights=[5, 4, 2, 1])[0]
    size = rng.choice([None, "small", "medium", "large", "small", "large"])
    return {"drink": drink, "qty": qty, "size": size}


def change(rng: random.Random, order: list[dict], state: dict) -> str:
    """Apply one random change to ``order``/``state``; return the user's words for it."""
    kinds = ["add", "size", "qty", "where"] + (["drop"] if len(order) > 1 else [])
    kind = rng.choice(kinds)
    if kind == "add" and len(order) < 4:
        item = new_item(rng, [i["drink"] for i in order])
        order.append(item)
        return rng.choice(["also {}.", "and {}, please.", "add {}."]).format(
            drink_phrase(rng, item["qty"], item["size"], item["drink"])
        )
    item = rng.choice(order)
    name = item["drink"][0] if item["qty"] == 1 else item["drink"][1]
    if kind == "size":
        item["size"] = rng.choice([s for s in demo.SIZES if s != item["size"]])
        return rng.choice(["actually, make the {} {}.", "can the {} be {} instead?"]).format(
            name, item["size"]
        )
    if kind == "qty":
        item["qty"] = rng.choice([q for q in (1, 2, 3, 4) if q != item["qty"]])
        return f"change the {name} to {({1: 'one', **demo.NUMBER_WORDS})[item['qty']]}."
    if kind == "drop" and len(order) > 1:
        order.remove(item)
        return rng.choice(["drop the {}, please.", "no {} after all."]).format(name)
    state["to_go"] = not state["to_go"]
    return "oh, and it's to go." if state["to_go"] else "actually, we'll have it here."


def code(order: list[dict], to_go: bool) -> str:
    items = [
        f"{i['qty']}x{demo.SIZES[i['size']] if i['size'] else 'M'}-"
        f"{i['drink'][0].replace(' ', '').upper()}"
        for i in order
    ]
    return " ".join(items) + (" TOGO" if to_go else "")


def conversation(rng: random.Random) -> list[dict]:
    order = [new_item(rng, [])]
    state = {"to_go": rng.random() < 0.3}
    first = drink_phrase(rng, order[0]["qty"], order[0]["size"], order[0]["drink"])
    where = " to go" if state["to_go"] else ""
    turns = [f"Order code game: hi, I'd like {first}{where}."]
    for _ in range(rng.choice([2, 3, 4])):
        turns.append(change(rng, order, state))
    messages = []
    for text in turns:
        messages += [{"from": "human", "value": text}, {"from": "gpt", "value": rng.choice(ACKS)}]
    messages += [
        {"from": "human", "value": rng.choice(ASK_CODE)},
        {"from": "gpt", "value": code(order, state["to_go"])},
    ]
    return messages


def generate() -> tuple[list[dict], list[dict]]:
    """(train rows, held-out rows); deterministic; no conversation in both."""
    rng = random.Random(SEED)
    seen: set[str] = set()
    rows: list[dict] = []
    while len(rows) < N_TRAIN + N_HELDOUT:
        messages = conversation(rng)
        key = "\n".join(m["value"] for m in messages)
        if key not in seen:
            seen.add(key)
            rows.append({"id": f"multiturn-{len(rows):04d}", "conversations": messages})
    return rows[N_HELDOUT:], rows[:N_HELDOUT]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--check", action="store_true", help="verify the files, write nothing")
    args = parser.parse_args(argv)
    train, heldout = generate()
    files = {"train.jsonl": demo.to_jsonl(train), "heldout.jsonl": demo.to_jsonl(heldout)}
    return demo.write_or_check(files, args.out, check=args.check)


if __name__ == "__main__":
    sys.exit(main())
