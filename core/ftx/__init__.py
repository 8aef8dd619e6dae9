"""ftx: fine-tune language models with interchangeable method plugins.

From Python (notebooks, scripts), the same engine as the ``ftx`` command (:mod:`ftx.api`)::

    import ftx
    result = ftx.run("qlora", data="train.jsonl", train={"max_steps": 200})
    result.eval_after, result.chat("Hello"), result.export("merged")
    ftx.compare(["fft", "sft", "qlora"]), ftx.plan(gpu_mem="16GB"), ftx.data.check("x.jsonl")

Plugins import the marker from here::

    from ftx import hookimpl

Importing this package is cheap: it pulls in pluggy only, never torch or transformers, and it
leaves the process environment as it was.
"""

from __future__ import annotations

import logging

import pluggy

# Importing ftx leaves the process environment alone: the `ftx` command sets OMP_WAIT_POLICY and
# HF_HUB_OFFLINE for itself (ftx.process_env), and every load passes local_files_only=True.
# bitsandbytes warns at import that it could not download optional CPU kernels from a hub; ftx
# never downloads, so the user cannot act on it. Its fallback kernels are used either way.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

__version__ = "0.1.0"

PROJECT = "ftx"
ENTRY_POINT_GROUP = "ftx.plugins"
"""Entry-point group of method plugins (what trains)."""
OBJECTIVE_ENTRY_POINT_GROUP = "ftx.objectives"
"""Entry-point group of objective plugins (what a run learns from)."""
ENTRY_POINT_GROUPS = {"method": ENTRY_POINT_GROUP, "objective": OBJECTIVE_ENTRY_POINT_GROUP}
REWARD_ENTRY_POINT_GROUP = "ftx.rewards"
"""Entry-point group of reward functions (plain functions, not hook plugins: ``ftx.rewards``)."""

hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marker for method-plugin hook implementations (`@hookimpl`, `@hookimpl(trylast=True)`, …)."""

# The Python API. No module of ftx is named run, compare or plan (a test keeps it so): importing
# one would replace the function of that name on this package.
from ftx.api import compare, plan, run  # noqa: E402
from ftx.errors import BadInput, RunFailed, RunInterrupted  # noqa: E402
from ftx.results import CompareResult, RunResult  # noqa: E402


def __getattr__(name: str) -> object:
    """``ftx.data`` (``ftx.data.check``) without ``import ftx.data``, imported on first use."""
    if name == "data":
        import importlib

        return importlib.import_module("ftx.data")
    raise AttributeError(f"module 'ftx' has no attribute {name!r}")


__all__ = [
    "ENTRY_POINT_GROUP",
    "ENTRY_POINT_GROUPS",
    "OBJECTIVE_ENTRY_POINT_GROUP",
    "PROJECT",
    "REWARD_ENTRY_POINT_GROUP",
    "BadInput",
    "CompareResult",
    "RunFailed",
    "RunInterrupted",
    "RunResult",
    "__version__",
    "compare",
    "hookimpl",
    "plan",
    "run",
]
