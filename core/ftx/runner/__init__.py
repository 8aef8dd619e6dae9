"""One fine-tuning run: validate everything, then walk the plugin through its hooks.

* :mod:`~ftx.runner.preparation` — :func:`prepare`: every check that can fail because of the user,
  and every decision (config, device, dtype, attention, data, output directory); no side effects;
* :mod:`~ftx.runner.execution` — :func:`execute`: the hook sequence and how each ending is recorded;
* :mod:`~ftx.runner.rundir` — the run directory: one owner (a lock), ``--overwrite`` that never
  loses the earlier run;
* :mod:`~ftx.runner.tokenizing` — the rows as the trainer's datasets, through the token cache;
* :mod:`~ftx.runner.training` — the trainer hooks and ``trainer.train()``;
* :mod:`~ftx.runner.checkpoints`, :mod:`~ftx.runner.scoring`, :mod:`~ftx.runner.provenance`,
  :mod:`~ftx.runner.memory`, :mod:`~ftx.runner.failures` — one job each.

The names below are the public ones (``from ftx.runner import prepare, execute, …``).
"""

from __future__ import annotations

from ftx.runner.checkpoints import newest_checkpoint
from ftx.runner.execution import execute, quiet_libraries
from ftx.runner.failures import NonFiniteLoss, is_out_of_memory, out_of_memory_advice
from ftx.runner.memory import peak_rss_bytes, reset_peak_rss
from ftx.runner.preparation import prepare
from ftx.runner.provenance import file_hash, git_revision, library_versions
from ftx.runner.request import PreparedRun, RunRequest
from ftx.runner.rundir import RunDirectory, default_output
from ftx.runner.training import count_parameters

__all__ = [
    "NonFiniteLoss",
    "PreparedRun",
    "RunDirectory",
    "RunRequest",
    "count_parameters",
    "default_output",
    "execute",
    "file_hash",
    "git_revision",
    "is_out_of_memory",
    "library_versions",
    "newest_checkpoint",
    "out_of_memory_advice",
    "peak_rss_bytes",
    "prepare",
    "quiet_libraries",
    "reset_peak_rss",
]
