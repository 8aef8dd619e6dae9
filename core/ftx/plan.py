"""Compatibility re-exports: the estimate helpers and planner under their old ``ftx.plan`` path.

New code imports the estimate library from :mod:`ftx.estimates` (what a method plugin's
``estimate_memory`` hook builds with) and the orchestrator behind ``ftx plan`` from
:mod:`ftx.planner`. This module stays for third-party plugins written against
``ftx.plan.estimate_dense`` and friends; it adds nothing of its own.
"""

from __future__ import annotations

from ftx.estimates import *  # noqa: F403  (the library's public names, as before)
from ftx.estimates import __all__ as _estimates_all
from ftx.models import read_model_config as load_model_config
from ftx.planner import (
    ALLOCATOR_RESERVE,
    RUNTIME_RESERVE,
    memory_budget,
    plan,
    recommend,
    resolve_device,
    usable_memory,
)

__all__ = [
    *_estimates_all,
    "ALLOCATOR_RESERVE",
    "RUNTIME_RESERVE",
    "load_model_config",
    "memory_budget",
    "plan",
    "recommend",
    "resolve_device",
    "usable_memory",
]
