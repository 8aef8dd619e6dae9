"""Whether a run directory holds a whole finished run: for tests and ``bench/soak.py``.

:func:`run_problems` lists, as sentences, what is wrong with a run that should have finished:
its status and step count, its metrics log (every step once, in order), a ``model/`` that plain
``AutoModelForCausalLM.from_pretrained`` loads, ``adapter/`` for adapter methods, and what an
interrupted write leaves behind (:func:`leftovers`). Imports transformers when called.
"""

from __future__ import annotations

import json
from pathlib import Path

from ftx.runner.checkpoints import checkpoint_step, checkpoints_in, is_complete, read_json


def leftovers(run_dir: Path) -> list[str]:
    """Temporaries of artifacts (``.tmp-*``, ``.old-*``, anywhere below ``run_dir``) and
    checkpoints cut short, as paths relative to ``run_dir``."""
    temporaries = [p for p in run_dir.rglob("*") if p.name.startswith((".tmp-", ".old-"))]
    cut_short = [p for p in checkpoints_in(run_dir / "checkpoints") if not is_complete(p)]
    return sorted(str(p.relative_to(run_dir)) for p in [*temporaries, *cut_short])


def logged_steps(run_dir: Path) -> list[int | str]:
    """The ``step`` of every training line of ``metrics.jsonl`` (an evaluation's line, only
    ``eval_*`` values, is left out); a line that is not JSON as ``"?"``."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    steps: list[int | str] = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
            if all(k == "step" or k.startswith("eval_") for k in row) and len(row) > 1:
                continue
            steps.append(row["step"])
        except (ValueError, KeyError, TypeError, AttributeError):
            steps.append("?")
    return steps


def run_problems(run_dir: Path, *, steps: int, adapter: bool = False) -> list[str]:
    """What keeps ``run_dir`` from being a whole run finished at exactly ``steps`` steps (logged
    every step); ``[]`` when nothing does. ``adapter``: the method exports ``adapter/`` too."""
    problems = []
    summary = read_json(run_dir / "summary.json")
    if summary.get("status") != "finished":
        problems.append(f"status is {summary.get('status')!r}, not 'finished'")
    if summary.get("steps") != steps:
        problems.append(f"summary.json says {summary.get('steps')} steps, not {steps}")
    logged = logged_steps(run_dir)
    if logged != list(range(1, steps + 1)):
        problems.append(f"metrics.jsonl logs steps {logged}, not 1..{steps} once each")
    last = [checkpoint_step(p) for p in checkpoints_in(run_dir / "checkpoints") if is_complete(p)]
    if max(last, default=0) != steps:
        problems.append(f"the newest complete checkpoint is at step {max(last, default=0)}")
    problems += _unloadable(run_dir, adapter=adapter)
    problems += [f"left behind: {path}" for path in leftovers(run_dir)]
    return problems


def _unloadable(run_dir: Path, *, adapter: bool) -> list[str]:
    from transformers import AutoModelForCausalLM

    problems = []
    try:
        AutoModelForCausalLM.from_pretrained(str(run_dir / "model"), local_files_only=True)
    except Exception as exc:  # any failure to load is the finding
        problems.append(f"model/ does not load: {type(exc).__name__}: {exc}")
    if adapter:
        from peft import PeftConfig

        try:
            PeftConfig.from_pretrained(str(run_dir / "adapter"), local_files_only=True)
        except Exception as exc:
            problems.append(f"adapter/ does not load: {type(exc).__name__}: {exc}")
        if not list((run_dir / "adapter").glob("adapter_model.*")):
            problems.append("adapter/ has no adapter weights")
    return problems
