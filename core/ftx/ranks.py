"""Which process of a distributed run this is, read from the launcher's environment.

torchrun, ``accelerate launch`` and ``deepspeed`` set ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; SLURM's ``srun`` with one task per GPU sets ``SLURM_PROCID``/``SLURM_NTASKS``/
``SLURM_LOCALID``, which :func:`adopt_slurm_tasks` turns into the former; a plain process has
none and is rank 0 of 1. The one rule every part of ftx follows: only the main process (global
rank 0) writes run files and prints.
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


def adopt_slurm_tasks(environ: dict[str, str] | None = None) -> bool:
    """For ``srun ftx run …`` with one task per GPU (no torchrun): set ``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE`` from SLURM's task variables, and
    ``MASTER_PORT`` (29500) if unset. Returns whether it did. Nothing happens under another
    launcher (``RANK`` set) or for a single task. BadInput without ``MASTER_ADDR``: SLURM does not
    say which host the tasks should meet at."""
    env = os.environ if environ is None else environ
    tasks = int(env.get("SLURM_NTASKS", "1") or 1)
    if "RANK" in env or tasks < 2 or "SLURM_PROCID" not in env:
        return False
    if not env.get("MASTER_ADDR"):
        from ftx.errors import BadInput

        raise BadInput(
            f"started by srun as task {env['SLURM_PROCID']} of {tasks} without MASTER_ADDR",
            hint='export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1) '
            "before srun, or use `ftx launch slurm` (one torchrun per node)",
        )
    env["RANK"], env["WORLD_SIZE"] = env["SLURM_PROCID"], str(tasks)
    env["LOCAL_RANK"] = env.get("SLURM_LOCALID", "0")
    per_node = env.get("SLURM_NTASKS_PER_NODE", "").split("(")[0]
    env["LOCAL_WORLD_SIZE"] = per_node if per_node.isdigit() else str(tasks)
    env.setdefault("MASTER_PORT", "29500")
    return True
