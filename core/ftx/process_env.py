"""The process settings the ``ftx`` command makes for itself, and only for itself.

Importing :mod:`ftx` changes nothing in the importer's environment (a notebook, a script using
the Python API). The ``ftx`` console script (:func:`ftx.cli.main`) calls
:func:`configure_command_process` first, before torch or huggingface_hub load, because each reads
its variable once, when it loads:

* ``OMP_WAIT_POLICY``: OpenMP reads it when torch loads its runtime (:mod:`ftx.openmp` says why
  ftx picks PASSIVE on a busy machine);
* ``HF_HUB_OFFLINE=1``: huggingface_hub reads it when it is imported. ftx never downloads; every
  load it makes passes ``local_files_only=True`` as well, so the Python API is offline without it.

The Python API (``ftx.run``, ``ftx.plan``, ``ftx.data.check``: whichever loads torch first) sets
the OpenMP policy only when torch is not loaded yet (:func:`choose_wait_policy_if_possible`);
the decision lands in ``summary.json``. A value the
user set is never replaced.
"""

from __future__ import annotations

import os
import sys

from ftx import openmp


def configure_command_process() -> None:
    """What ``ftx`` (the command) sets before anything heavy loads: the OpenMP wait policy and
    ``HF_HUB_OFFLINE`` (each only when the user has not set it)."""
    openmp.choose_wait_policy()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def choose_wait_policy_if_possible() -> str:
    """For the Python API: choose the OpenMP policy when it can still take effect (torch not
    loaded yet); otherwise record that the process's own setting is in force. Returns
    :data:`ftx.openmp.DECISION`."""
    if "torch" not in sys.modules:
        return openmp.choose_wait_policy()
    current = os.environ.get("OMP_WAIT_POLICY")
    openmp.DECISION = (
        f"{current or 'OpenMP default'} (torch was loaded before ftx.run: left as it was)"
    )
    return openmp.DECISION
