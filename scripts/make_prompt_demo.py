"""Generate the built-in prompt demo for ``--objective grpo``: the order-code task as prompts.

The prompts and answers are the supervised demo's (``scripts/make_demo_data.py``, whose fixed
seed draws them: ``Order code: <a coffee order>`` -> ``2xL-LATTE 1xS-ICEDTEA TOGO``), the train
file from the supervised train rows and the held-out file from the supervised held-out rows, so
a GRPO run that starts from a supervised demo run is scored on prompts neither run trained on.
Each row:

* ``prompt``: the user's message, as one message (``[{"role": "user", ...}]``);
* ``reference``: the correct order code (the ``exact`` reward and held-out exact match);
* ``format_pattern``: the grammar of an order code (:data:`ORDER_CODE`: items ``NxS-NAME``
  separated by spaces, then `` TOGO`` for take-away), which the ``format`` reward matches.

Output (deterministic): ``core/ftx/demo/prompts_train.jsonl`` (480 rows) and
``core/ftx/demo/prompts_eval.jsonl`` (80 rows).

Run: ``python scripts/make_prompt_demo.py`` (``--check`` verifies that the committed files are
what the script generates).
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path
from types import SimpleNamespace

SCRIPTS = Path(__file__).resolve().parent
OUT_DIR = SCRIPTS.parent / "core" / "ftx" / "demo"
ORDER_CODE = r"[1-9][0-9]*x[SML]-[A-Z]+( [1-9][0-9]*x[SML]-[A-Z]+)*( TOGO)?"


DEMO = SimpleNamespace(**runpy.run_path(str(SCRIPTS / "make_demo_data.py")))
"""The supervised demo's generator (scripts/ is not a package)."""


def prompt_rows(rows: list[dict]) -> list[dict]:
    """Supervised demo rows (Vicuna) as prompt rows with their answer as ``reference``."""
    out = []
    for row in rows:
        question, answer = (turn["value"] for turn in row["conversations"])
        out.append(
            {
                "id": row["id"],
                "prompt": [{"role": "user", "content": question}],
                "reference": answer,
                "format_pattern": ORDER_CODE,
            }
        )
    return out


def files() -> dict[str, str]:
    train, heldout = DEMO.generate()
    return {
        name: "".join(json.dumps(row) + "\n" for row in prompt_rows(rows))
        for name, rows in (("prompts_train.jsonl", train), ("prompts_eval.jsonl", heldout))
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory")
    parser.add_argument("--check", action="store_true", help="verify the files, write nothing")
    args = parser.parse_args(argv)
    return DEMO.write_or_check(files(), args.out, check=args.check)


if __name__ == "__main__":
    sys.exit(main())
