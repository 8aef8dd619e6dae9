"""The conformance kit's report, its constants, and the checker that names plugin, pair and
check."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftx.context import ObjectiveTraits

HEAVY_MODULES = ("torch", "transformers", "peft", "trl", "bitsandbytes")
"""Libraries an entry-point module must not import at load time."""

DEFAULT_LEARNING_RATE = 5e-3
"""High enough that a tiny random model's loss falls visibly within a few steps."""

TINY_LAYERS = 4
"""Decoder blocks of the kit's tiny model: enough for ``last:N``-style selections to make sense."""

LEARNED_ROWS = 16
"""Training rows on which the trained model must beat the base model (the ``learned`` check)."""

HELDOUT_ROWS = 8
"""Held-out rows the kit writes and scores before and after training (the ``run`` check)."""

RUN_CHECKS = ("run", "loss", "export", "learned", "gpu-bf16")
"""The checks made on each method × objective run, in order (``gpu-bf16`` is reported after
``cli``, as it always was)."""

_SUBPROCESS_TIMEOUT_S = 120


@dataclass
class ConformanceReport:
    """What :func:`check_plugin` found, for further assertions in the plugin's own tests.

    ``kind``: ``"method"`` or ``"objective"``; ``hooks_implemented``: the hooks the plugin's
    module implements; ``options``: its options with their defaults (``method_options`` or
    ``objective_options``); ``traits`` (objectives): its ``objective_traits``;
    ``arguments_class`` (objectives): the dotted name of its arguments class.

    One report per run in ``runs`` (a method: one per objective checked, ``supervised`` by
    default; an objective: one per method), each with ``method`` and ``objective`` set and the
    run's fields: ``hooks_answered`` (a method's run: who answered each of the four method
    hooks, the plugin's name or ``"core"``; an objective's: each per-run hook it implements);
    ``losses``: the logged training losses, one per step; ``fit_loss``: ``(base, trained)``
    loss on the first training rows, or ``fit_margin``: ``(base, trained)`` mean log-probability
    margin of the chosen (desirable) over the rejected (undesirable) answers (the ``learned``
    check); ``eval_before``/``eval_after``: the held-out scores of ``summary.json``;
    ``run_dir``: the run directory (with ``model/``, ``metrics.jsonl``, ``summary.json`` …);
    ``base_model``: the tiny model trained. The report itself carries the first run's fields
    too, so a single run reads as before.

    ``passed``: the checks that passed (for every run), in order; ``skipped``:
    ``{check: reason}`` (``"check (method × objective)"`` when only some runs skipped it);
    ``seconds``: wall time per check (summed over the runs).
    """

    plugin: str
    kind: str = "method"
    method: str | None = None
    objective: str | None = None
    distribution: str = "?"
    version: str = "?"
    hooks_implemented: list[str] = field(default_factory=list)
    hooks_answered: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    traits: ObjectiveTraits | None = None
    arguments_class: str | None = None
    trainable_params: int = 0
    total_params: int = 0
    losses: list[float] = field(default_factory=list)
    fit_loss: tuple[float, float] | None = None
    fit_margin: tuple[float, float] | None = None
    eval_before: dict[str, Any] | None = None
    eval_after: dict[str, Any] | None = None
    run_dir: Path | None = None
    base_model: Path | None = None
    artifacts: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    runs: list[ConformanceReport] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def pair(self) -> str:
        """``"method 'fft' × objective 'dpo'"`` for a run's report; ``""`` otherwise."""
        if self.method is None or self.objective is None:
            return ""
        return f"method '{self.method}' × objective '{self.objective}'"

    def take_run(self, run: ConformanceReport) -> None:
        """Record ``run``; the first one's fields become this report's too."""
        self.runs.append(run)
        if len(self.runs) > 1:
            return
        for name in _RUN_FIELDS:
            setattr(self, name, getattr(run, name))

    def merge_run_checks(self, checks: tuple[str, ...] = RUN_CHECKS) -> None:
        """After every run: each of ``checks`` passed when it passed in each run that made it;
        a skip is listed once when every run skipped it for one reason, else per run."""
        for check in checks:
            passed = [run for run in self.runs if check in run.passed]
            skipped = [run for run in self.runs if check in run.skipped]
            if passed:
                self.passed.append(check)
            reasons = {run.skipped[check] for run in skipped}
            if skipped and not passed and len(reasons) == 1 and len(skipped) == len(self.runs):
                self.skipped[check] = reasons.pop()
            else:
                for run in skipped:
                    self.skipped[f"{check} ({run.pair})"] = run.skipped[check]
            timed = [run.seconds[check] for run in self.runs if check in run.seconds]
            if timed:
                self.seconds[check] = round(sum(timed), 2)


_RUN_FIELDS = (
    "method",
    "objective",
    "hooks_answered",
    "trainable_params",
    "total_params",
    "losses",
    "fit_loss",
    "fit_margin",
    "eval_before",
    "eval_after",
    "run_dir",
    "base_model",
    "artifacts",
    "summary",
)


class SkipCheck(Exception):
    """Raised inside a check that cannot be made: it is recorded in ``skipped`` with the
    message as its reason, neither passed nor failed."""


class Checker:
    """Runs named checks, turning any failure into one AssertionError naming the plugin, the
    check and, for a run's checks, the method × objective ``pair``."""

    def __init__(self, report: ConformanceReport, *, pair: str = "") -> None:
        self.report = report
        self.pair = pair
        self.context: str = ""

    @contextlib.contextmanager
    def check(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        self.context = ""
        try:
            yield
        except SkipCheck as exc:
            self.report.skipped[name] = str(exc)
            self.report.seconds[name] = round(time.perf_counter() - started, 2)
            return
        except AssertionError as exc:
            raise AssertionError(self._message(name, str(exc) or "assertion failed")) from exc
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise AssertionError(self._message(name, detail)) from exc
        finally:
            self.report.seconds[name] = round(time.perf_counter() - started, 2)
        self.report.passed.append(name)

    def _message(self, name: str, detail: str) -> str:
        pair = f" ({self.pair})" if self.pair else ""
        text = f"ftx conformance: plugin '{self.report.plugin}' failed check '{name}'{pair}: "
        text += detail
        if self.context:
            text += f"\n--- run output (last lines) ---\n{self.context}"
        return text
