"""Which process of a distributed run this is, read from the launcher's environment.

torchrun, ``accelerate launch`` and SLURM's ``srun`` (through torchrun) set ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE``; a plain process has none and is rank 0 of 1. The one rule
every part of ftx follows: only the main process (rank 0) writes run files and prints.
"""

from __future__ import annotations

import os


def rank() -> int:
    """Global rank of this process (0 when not distributed)."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """Rank of this process on its machine (0 when not distributed)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def world_size() -> int:
    """Number of processes in the run (1 when not distributed)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True on rank 0, or when not distributed: only it writes files and logs."""
    return rank() == 0


def under_launcher() -> bool:
    """True inside a process started by torchrun/accelerate (it sets ``LOCAL_RANK``)."""
    return "LOCAL_RANK" in os.environ
