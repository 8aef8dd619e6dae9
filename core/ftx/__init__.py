"""ftx: fine-tune language models with interchangeable method plugins.

Plugins import the marker from here::

    from ftx import hookimpl

Importing this package is cheap: it pulls in pluggy only, never torch or transformers.
"""

from __future__ import annotations

import logging
import os

import pluggy

# bitsandbytes (imported by trl/peft) loads a second OpenMP runtime next to torch's. With both
# runtimes' idle threads spin-waiting ("active" policy), CPU matmuls ran 4-30x slower here
# (bench/README: omp_wait_policy). Idle OpenMP threads must sleep instead. This only takes effect
# if ftx is imported before torch, which is the case for the `ftx` command.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# ftx never downloads at run time: say so to huggingface_hub instead of letting it retry.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# bitsandbytes warns at import that it could not download optional CPU kernels from a hub; ftx
# never downloads, so the user cannot act on it. Its fallback kernels are used either way.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

__version__ = "0.1.0"

PROJECT = "ftx"
ENTRY_POINT_GROUP = "ftx.plugins"

hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marker for method-plugin hook implementations (`@hookimpl`, `@hookimpl(trylast=True)`, …)."""

__all__ = ["ENTRY_POINT_GROUP", "PROJECT", "__version__", "hookimpl"]
