"""Base-model scores shared between runs: scored once, reused by every run that would get the
same number (``ftx compare`` gives all its runs one file, ``OUT/base-scores.json``).

A score is stored under a fingerprint of everything that decides it — the model directory, the
objective and its options, the held-out rows themselves, the ``data`` settings and the eval
batch size — so a run reuses a score only when scoring again would compute the very same
thing; any difference (another ``data.eval_limit``, another model) scores afresh. ``ftx run
--base-scores FILE`` (hidden: ``ftx compare`` passes it) selects the file; without it every run
scores its own base model, as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftx.artifacts import write_json
from ftx.runner.checkpoints import read_json


def fingerprint(kind: str, run: Any, rows: list[Any]) -> str:
    """What decides a ``kind`` score (``eval_before``, ``task_eval_before``) of ``run``'s base
    model on ``rows``, hashed."""
    data = {k: v for k, v in run.config["data"].items() if k != "path"}
    facts = {
        "kind": kind,
        "model": str(run.model_path),
        "objective": run.objective,
        "objective_options": run.objective_options,
        "data": data,
        "eval_batch_size": run.train_args.get("per_device_eval_batch_size"),
        "rows": [repr(r) for r in rows],
    }
    text = json.dumps(facts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def shared_score(
    path: Path | None, key: str, score: Callable[[], dict[str, Any]]
) -> tuple[dict[str, Any], bool]:
    """The score stored in ``path`` under ``key``, else ``score()`` (then stored there);
    returns ``(result, reused)``. ``path`` None: always ``score()``, nothing stored."""
    if path is None:
        return score(), False
    stored = read_json(path).get(key)
    if isinstance(stored, dict):
        return stored, True
    result = score()
    write_json(path, {**read_json(path), key: result})
    return result, False
