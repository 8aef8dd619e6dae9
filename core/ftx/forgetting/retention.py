"""Retention: of the shipped questions the base model answers right, the share the tuned model
still answers right.

Replies are generated greedily with ftx's own generation (:func:`ftx.evaluate.generations`,
batched by :data:`BATCH_SIZE`, stopped at the end of turn, at most :data:`MAX_NEW_TOKENS` new
tokens) and checked by :func:`ftx.forgetting.questions.answer_matches`. The base model's
per-question correctness is cached under ``$FTX_CACHE/forgetting/`` keyed by
:func:`base_fingerprint`, so a compare of several methods on one base scores it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from ftx.forgetting.questions import (
    QUESTIONS_FILE,
    Question,
    answer_matches,
    as_conversations,
    load_questions,
)

MAX_NEW_TOKENS = 12
"""Enough for a one-word or one-number reply and what follows it; the checker reads the start."""
BATCH_SIZE = 64
"""Prompts per generate call: on 2 CPU cores 64 took ~15% less CPU time than ftx's default 16
for the same answers (SmolLM2; the prompts are short, so the KV cache stays small)."""
CHECKER_VERSION = 1
"""Bumped whenever :func:`answer_matches` or the prompts change, so old caches are not reused."""


def answers_right(
    model: Any, tokenizer: Any, questions: list[Question], *, template: str = "auto"
) -> list[bool]:
    """Whether ``model`` answers each question right (greedy, :data:`MAX_NEW_TOKENS`)."""
    from ftx.evaluate import generations

    rows = generations(
        model,
        tokenizer,
        as_conversations(questions),
        template=template,
        max_new_tokens=MAX_NEW_TOKENS,
        batch_size=BATCH_SIZE,
    )
    return [answer_matches(r["output"], q.answers) for q, r in zip(questions, rows, strict=True)]


def retention_score(base_right: list[bool], tuned_right: list[bool]) -> dict[str, Any]:
    """``{"retention", "retention_kept", "retention_base_correct", "questions"}``: retention is
    None when the base model got nothing right (nothing to retain)."""
    base_correct = sum(base_right)
    kept = sum(b and t for b, t in zip(base_right, tuned_right, strict=True))
    return {
        "retention": kept / base_correct if base_correct else None,
        "retention_kept": kept,
        "retention_base_correct": base_correct,
        "questions": len(base_right),
    }


def base_fingerprint(model_dir: str | Path, template: str) -> str:
    """A key for a base model's answers: its directory's files (name, size, mtime), the
    question file's content, the template, the generation budget and the checker version."""
    directory = Path(model_dir).resolve()
    digest = hashlib.sha256()
    digest.update(f"{directory}|{template}|{MAX_NEW_TOKENS}|{CHECKER_VERSION}".encode())
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        stat = path.stat()
        digest.update(f"|{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    digest.update(QUESTIONS_FILE.read_bytes())
    return digest.hexdigest()[:16]


def _cache_file(model_dir: str | Path, template: str) -> Path:
    from ftx.models import cache_root

    return cache_root() / "forgetting" / f"base-{base_fingerprint(model_dir, template)}.json"


def cached_base_answers(model_dir: str | Path, template: str) -> list[bool] | None:
    """The base model's cached per-question correctness, or None when not cached (or the cache
    is unreadable or for another question count)."""
    try:
        right = json.loads(_cache_file(model_dir, template).read_text())["right"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(right, list) or len(right) != len(load_questions()):
        return None
    return [bool(x) for x in right]


def store_base_answers(model_dir: str | Path, template: str, right: list[bool]) -> None:
    """Cache the base model's correctness (best effort: a read-only cache goes without)."""
    from ftx.artifacts import write_json

    with contextlib.suppress(OSError):
        write_json(_cache_file(model_dir, template), {"model": str(model_dir), "right": right})
