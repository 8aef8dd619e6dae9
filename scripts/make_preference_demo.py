"""Generate the built-in preference demo: the order-code task as chosen/rejected pairs.

The prompts and the correct answers are the supervised demo's (``scripts/make_demo_data.py``:
``Order code: <a coffee order>`` -> ``2xL-LATTE 1xS-ICEDTEA TOGO``), so the preference train
file uses the supervised train prompts and the held-out pairs the supervised held-out prompts:
a run that starts from a supervised demo run is scored on prompts neither run trained on.

Each pair: ``chosen`` = the correct order code, ``rejected`` = a near miss that changes one
item of it, the kind drawn evenly (fixed seed): a wrong **count** (the quantity one off, or
another small number), a wrong **size** (another of S/M/L) or a wrong **item** (another drink
of the menu, not already in the order). So the two answers share most of their tokens and the
pair isolates one rule of the code.

Output (fixed seed, deterministic, TRL's conversational ``prompt``/``chosen``/``rejected``):

* ``core/ftx/demo/preference_train.jsonl``: 480 pairs (the supervised train prompts);
* ``core/ftx/demo/preference_eval.jsonl``: 80 pairs (the supervised held-out prompts);
* ``core/ftx/demo/preference_kto_train.jsonl``: the 480 train pairs unpaired for KTO, 960 rows
  ``prompt``/``completion``/``label`` (chosen true, rejected false), shuffled with a fixed seed
  so that neighbouring rows (KTO's KL estimate pairs each completion with its neighbour's
  prompt) rarely share a prompt.

Near misses in the files: train 173 count, 158 size, 149 item; held-out 30, 26, 24.

Sizes with the SmolLM2 tokenizer and its chat template (which injects its default system
prompt), measured by ``--measure`` through ``ftx.data.tokenize_pairs``: prompts 38-61 tokens
(median 48, the generation prompt included), answers 7-32 tokens (median 18, ``<|im_end|>``
included); a sequence (prompt + one answer) is at most 93 tokens, so ``max_length`` 128
truncates nothing. SmolLM2-135M-Instruct before any training (``ftx.evaluate_pairwise``):
held-out pairwise accuracy 0.750 (60/80), mean margin 4.05 nats: it already notices a count
that contradicts the order, but not the code's own rules (M when no size is said).

Run: ``python scripts/make_preference_demo.py`` (writes the three files; ``--check`` verifies
that the committed files are what the script generates; ``--measure`` prints the token sizes and
the base model's held-out pairwise accuracy, which takes a minute).
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
from pathlib import Path

SEED = 4321
SCRIPTS = Path(__file__).resolve().parent
OUT_DIR = SCRIPTS.parent / "core" / "ftx" / "demo"
KINDS = ("count", "size", "item")


def _supervised_demo():
    """The supervised demo's generator module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("make_demo_data", SCRIPTS / "make_demo_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEMO = _supervised_demo()


def near_miss(rng: random.Random, answer: str, drinks: list[str]) -> str:
    """`answer` with one item changed: its count, its size or its drink (drawn from `rng`)."""
    items = answer.split()
    togo = items[-1] == "TOGO"
    codes = items[:-1] if togo else items
    index = rng.randrange(len(codes))
    quantity, rest = codes[index].split("x", 1)
    size, drink = rest.split("-", 1)
    kind = rng.choice(KINDS)
    if kind == "count":
        qty = int(quantity)
        choices = [q for q in (qty - 1, qty + 1, qty + 2) if q >= 1]
        quantity = str(rng.choice(choices))
    elif kind == "size":
        size = rng.choice([s for s in "SML" if s != size])
    else:
        taken = {code.split("-", 1)[1] for code in codes}
        drink = rng.choice([d for d in drinks if d not in taken])
    codes[index] = f"{quantity}x{size}-{drink}"
    return " ".join(codes + (["TOGO"] if togo else []))


def generate() -> tuple[list[dict], list[dict], list[dict]]:
    """(train pairs, held-out pairs, KTO train rows); deterministic."""
    train, heldout = DEMO.generate()
    drinks = [singular.replace(" ", "").upper() for singular, _ in DEMO.DRINKS]
    rng = random.Random(SEED)

    def pairs(rows: list[dict]) -> list[dict]:
        out = []
        for row in rows:
            question, answer = (turn["value"] for turn in row["conversations"])
            out.append(
                {
                    "id": row["id"],
                    "prompt": [{"role": "user", "content": question}],
                    "chosen": [{"role": "assistant", "content": answer}],
                    "rejected": [{"role": "assistant", "content": near_miss(rng, answer, drinks)}],
                }
            )
        return out

    train_pairs, heldout_pairs = pairs(train), pairs(heldout)
    kto = [
        {
            "id": f"{pair['id']}-{side}",
            "prompt": pair["prompt"],
            "completion": pair[side],
            "label": side == "chosen",
        }
        for pair in train_pairs
        for side in ("chosen", "rejected")
    ]
    rng.shuffle(kto)
    return train_pairs, heldout_pairs, kto


def files() -> dict[str, str]:
    """``{file name: content}`` of the three demo files."""
    train, heldout, kto = generate()
    return {
        "preference_train.jsonl": DEMO.to_jsonl(train),
        "preference_eval.jsonl": DEMO.to_jsonl(heldout),
        "preference_kto_train.jsonl": DEMO.to_jsonl(kto),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--check", action="store_true", help="verify the files, write nothing")
    parser.add_argument("--measure", action="store_true", help="token sizes, base model score")
    args = parser.parse_args(argv)
    if args.measure:
        measure(args.out)
        return 0
    return DEMO.write_or_check(files(), args.out, check=args.check)


def measure(out: Path) -> None:
    """Token sizes (SmolLM2 tokenizer) and SmolLM2's held-out pairwise accuracy (a minute)."""
    import torch
    from transformers import AutoModelForCausalLM

    from ftx.data import load_preference_pairs, tokenize_pairs
    from ftx.evaluate_pairwise import pairwise_scores
    from ftx.models import load_tokenizer, resolve_model

    model_dir = resolve_model(None)
    tokenizer = load_tokenizer(model_dir)
    train = load_preference_pairs(out / "preference_train.jsonl")
    stats = tokenize_pairs(train, tokenizer, max_length=128).stats
    answers = sorted(stats["chosen_lengths"] + stats["rejected_lengths"])
    prompts = sorted(stats["prompt_lengths"])
    print(f"prompt tokens {prompts[0]}-{prompts[-1]} (median {prompts[len(prompts) // 2]})")
    print(f"answer tokens {answers[0]}-{answers[-1]} (median {answers[len(answers) // 2]})")
    print(f"truncated at 128: {stats['truncated']}, identical: {stats['identical']}")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    heldout = load_preference_pairs(out / "preference_eval.jsonl")
    result = pairwise_scores(model, tokenizer, heldout, max_length=128)
    print(
        f"base model pairwise accuracy {result['score']:.3f} ({result['correct']}/"
        f"{result['n']}), mean margin {result['mean_margin']:.3f} nats"
    )


if __name__ == "__main__":
    sys.exit(main())
