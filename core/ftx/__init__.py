"""ftx: fine-tune language models with interchangeable method plugins.

Plugins import the marker from here::

    from ftx import hookimpl

Importing this package is cheap: it pulls in pluggy only, never torch or transformers.
"""

from __future__ import annotations

import logging
import os

import pluggy

from ftx.openmp import choose_wait_policy

# Idle OpenMP threads sleep (PASSIVE) when other tasks compete for the cores, spin otherwise
# (ftx/openmp.py). Takes effect only before torch loads, which is the case for the `ftx` command.
choose_wait_policy()
# ftx never downloads at run time: say so to huggingface_hub instead of letting it retry.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
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

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENTRY_POINT_GROUPS",
    "OBJECTIVE_ENTRY_POINT_GROUP",
    "PROJECT",
    "REWARD_ENTRY_POINT_GROUP",
    "__version__",
    "hookimpl",
]
