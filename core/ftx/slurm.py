"""``ftx launch slurm``: an sbatch script that runs one ``ftx run`` across SLURM nodes.

The script starts one torchrun per node (``srun --ntasks-per-node=1``), each with the static
rendezvous ``ftx run --nnodes`` uses: node rank from ``$SLURM_NODEID``, node count from
``$SLURM_NNODES``, the master at the first host of ``$SLURM_JOB_NODELIST`` (``scontrol show
hostnames``). Every node names the same run directory (``runs/<plugin>-$SLURM_JOB_ID`` unless
the run's arguments give ``--output``), which must be on a filesystem every node shares.
Nothing is submitted.
"""

from __future__ import annotations

import shlex
import sys

from ftx.errors import BadInput
from ftx.launch import DEFAULT_PORT, LAUNCH_OPTIONS, has_option, strip_option


def sbatch_script(
    run_args: list[str],
    *,
    nodes: int,
    gpus_per_node: int,
    job_name: str = "ftx",
    time_limit: str | None = None,
    partition: str | None = None,
    python: str | None = None,
    port: int = DEFAULT_PORT,
) -> str:
    """The sbatch script for ``ftx <run_args>`` (``run_args[0]`` must be ``run``) on ``nodes``
    nodes of ``gpus_per_node`` GPUs. BadInput for what the script cannot run."""
    if not run_args or run_args[0] != "run":
        raise BadInput(
            "ftx launch slurm: give the run after --, e.g. "
            "ftx launch slurm --nodes 2 --gpus-per-node 8 -- run --plugin fft --data d.jsonl"
        )
    if nodes < 1 or gpus_per_node < 1:
        raise BadInput("ftx launch slurm: --nodes and --gpus-per-node must be at least 1")
    args = list(run_args)
    for name in LAUNCH_OPTIONS:
        if has_option(args, name):
            raise BadInput(
                f"ftx launch slurm: {name} is set by the script from SLURM's variables",
                hint=f"drop {name} from the run's arguments",
            )
        args = strip_option(args, name)
    plugin = _plugin_of(args)
    output = None
    if not has_option(args, "--output", "-o"):
        output = f"runs/{plugin}-$SLURM_JOB_ID"
    directives = [
        f"#SBATCH --job-name={job_name}",
        f"#SBATCH --nodes={nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --gpus-per-node={gpus_per_node}",
        "#SBATCH --output=%x-%j.log",
    ]
    if time_limit:
        directives.append(f"#SBATCH --time={time_limit}")
    if partition:
        directives.append(f"#SBATCH --partition={partition}")
    quoted = " ".join(shlex.quote(a) for a in args)
    out_arg = f' --output "{output}"' if output else ""
    return "\n".join(
        [
            "#!/bin/bash",
            f"# ftx run on {nodes} node(s) x {gpus_per_node} GPU(s); written by `ftx launch "
            "slurm`. Submit with: sbatch THIS_FILE",
            *directives,
            "set -euo pipefail",
            f"PYTHON=${{PYTHON:-{shlex.quote(python or sys.executable)}}}",
            # sed reads every line: `head -n 1` closes the pipe early, and under pipefail the
            # writer's SIGPIPE (exit 141) ended the script whenever scontrol was still writing.
            'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | sed -n 1p)',
            f"MASTER_PORT=${{MASTER_PORT:-{port}}}",
            "export PYTHON MASTER_ADDR MASTER_PORT",
            "# One torchrun per node; each reads its node rank from SLURM when it starts.",
            'srun --ntasks-per-node=1 bash -c \'exec "$PYTHON" -m torch.distributed.run '
            '--nnodes="$SLURM_NNODES" --node_rank="$SLURM_NODEID" '
            f"--nproc_per_node={gpus_per_node} "
            '--master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" '
            '-m ftx.cli "$@"\' ftx-node '
            f"{quoted}{out_arg}",
            "",
        ]
    )


def _plugin_of(args: list[str]) -> str:
    """The ``--plugin``/``-p`` value of the run's arguments (``run`` for the default name)."""
    for i, arg in enumerate(args):
        if arg in ("--plugin", "-p") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--plugin="):
            return arg.split("=", 1)[1]
    return "run"
