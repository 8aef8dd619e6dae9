"""The conformance kit's report, its constants, and the checker that names plugin and check."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEAVY_MODULES = ("torch", "transformers", "peft", "trl", "bitsandbytes")
"""Libraries an entry-point module must not import at load time."""

DEFAULT_LEARNING_RATE = 5e-3
"""High enough that a tiny random model's loss falls visibly within a few steps."""

TINY_LAYERS = 4
"""Decoder blocks of the kit's tiny model: enough for ``last:N``-style selections to make sense."""

LEARNED_ROWS = 16
"""Training rows on which the trained model must beat the base model (the ``learned`` check)."""

_SUBPROCESS_TIMEOUT_S = 120


@dataclass
class ConformanceReport:
    """What :func:`check_plugin` found, for further assertions in the plugin's own tests.

    ``hooks_implemented``: the hooks the plugin's module implements; ``hooks_answered``: for
    each of the four method hooks, who answered in the run (the plugin's name or ``"core"``);
    ``losses``: the logged training losses, one per step; ``fit_loss``: ``(base, trained)``
    loss on the first training rows (the ``learned`` check); ``run_dir``: the run directory (with
    ``model/``, ``metrics.jsonl``, ``summary.json`` …); ``base_model``: the tiny model trained;
    ``passed``: the checks that passed, in order; ``skipped``: ``{check: reason}``;
    ``seconds``: wall time per check.
    """

    plugin: str
    distribution: str = "?"
    version: str = "?"
    hooks_implemented: list[str] = field(default_factory=list)
    hooks_answered: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    trainable_params: int = 0
    total_params: int = 0
    losses: list[float] = field(default_factory=list)
    fit_loss: tuple[float, float] | None = None
    run_dir: Path | None = None
    base_model: Path | None = None
    artifacts: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class Checker:
    """Runs named checks, turning any failure into one AssertionError naming plugin and check."""

    def __init__(self, report: ConformanceReport) -> None:
        self.report = report
        self.context: str = ""

    @contextlib.contextmanager
    def check(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        self.context = ""
        try:
            yield
        except AssertionError as exc:
            raise AssertionError(self._message(name, str(exc) or "assertion failed")) from exc
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise AssertionError(self._message(name, detail)) from exc
        finally:
            self.report.seconds[name] = round(time.perf_counter() - started, 2)
        self.report.passed.append(name)

    def _message(self, name: str, detail: str) -> str:
        text = f"ftx conformance: plugin '{self.report.plugin}' failed check '{name}': {detail}"
        if self.context:
            text += f"\n--- run output (last lines) ---\n{self.context}"
        return text
