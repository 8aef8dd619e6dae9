"""Multi-process launching: ``ftx run --nproc N [--nnodes M --node-rank R --master-addr H
--master-port P]`` re-executes itself under torchrun.

Every rank runs the same ``ftx run`` command line; ``--output`` is fixed before launching so all
ranks agree on the run directory, and only global rank 0 writes to it. On one machine torchrun
runs ``--standalone``; across machines every node's ``ftx run`` starts one torchrun with a
static rendezvous (node ``R`` of ``M``, a c10d TCP store at ``H:P`` hosted by node rank 0), so
node rank 0's first process is global rank 0. :func:`check_launch` refuses what would otherwise
fail after processes start: no address, a node rank outside the nodes, the port taken on node
rank 0, more processes than GPUs.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from ftx.errors import BadInput

DEFAULT_PORT = 29500
"""torchrun's own default master port."""


@dataclass(frozen=True)
class Nodes:
    """Where this machine stands in a multi-node run (``nnodes == 1``: one machine)."""

    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int = DEFAULT_PORT

    @property
    def multi(self) -> bool:
        return self.nnodes > 1

    @property
    def owns_run_directory(self) -> bool:
        """Node rank 0 hosts global rank 0: it creates, locks and writes the run directory."""
        return self.node_rank == 0


LAUNCH_OPTIONS = ("--nproc", "--nnodes", "--node-rank", "--master-addr", "--master-port")
"""The ``ftx run`` options that only the launching process reads (stripped for the ranks)."""


def strip_option(argv: list[str], name: str) -> list[str]:
    """Remove ``--name VALUE`` / ``--name=VALUE`` from ``argv``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == name:
            skip = True
            continue
        if arg.startswith(f"{name}="):
            continue
        out.append(arg)
    return out


def has_option(argv: list[str], *names: str) -> bool:
    return any(a in names or any(a.startswith(f"{n}=") for n in names) for a in argv)


def port_in_use(port: int, host: str = "") -> bool:
    """True when ``port`` cannot be bound on ``host`` (all interfaces by default)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_launch(nproc: int | None, nodes: Nodes, device: Any, *, output: str | None) -> None:
    """Refuse a launch that cannot work, before any process starts (BadInput, exit 2)."""
    if nproc is not None and nproc < 1:
        raise BadInput(f"--nproc {nproc}: give at least 1 process per node")
    if nodes.nnodes < 1:
        raise BadInput(f"--nnodes {nodes.nnodes}: give at least 1 node")
    if not 0 <= nodes.node_rank < nodes.nnodes:
        raise BadInput(
            f"--node-rank {nodes.node_rank}: with --nnodes {nodes.nnodes} a node rank is 0 to "
            f"{nodes.nnodes - 1}",
            hint="number the machines 0, 1, …; node rank 0 hosts the rendezvous",
        )
    if not 0 < nodes.master_port < 65536:
        raise BadInput(f"--master-port {nodes.master_port}: not a TCP port (1 to 65535)")
    if nodes.multi and not nodes.master_addr:
        raise BadInput(
            f"--nnodes {nodes.nnodes} needs --master-addr: the address of node rank 0, which "
            "every node can reach",
            hint="e.g. --master-addr 10.0.0.1 --master-port 29500 on every node",
        )
    if nodes.multi and output is None:
        raise BadInput(
            "--nnodes needs --output: every node must name the same run directory (a default "
            "name carries each machine's own clock)",
            hint="pass the same --output on every node (a shared filesystem for --resume)",
        )
    if nodes.multi and nodes.owns_run_directory and port_in_use(nodes.master_port):
        raise BadInput(
            f"--master-port {nodes.master_port} is in use on this machine (node rank 0 hosts "
            "the rendezvous there)",
            hint="choose a free --master-port and give the same one to every node",
        )
    if device.kind == "cuda" and nproc is not None and nproc > device.count:
        raise BadInput(
            f"--nproc {nproc}: this machine has {device.count} GPU"
            f"{'s' if device.count != 1 else ''} ({device.name})",
            hint=f"use --nproc {device.count} or fewer (one process per GPU)",
        )


def torchrun_command(
    nproc: int, argv: list[str], *, output: str | None, nodes: Nodes | None = None
) -> list[str]:
    """The torchrun command line that runs ``ftx <argv>`` on ``nproc`` processes of this
    machine (one node of ``nodes``)."""
    nodes = nodes or Nodes()
    args = list(argv)
    for name in LAUNCH_OPTIONS:
        args = strip_option(args, name)
    if output is not None and not has_option(args, "--output", "-o"):
        args += ["--output", output]
    if nodes.multi:
        rendezvous = [
            f"--nnodes={nodes.nnodes}",
            f"--node_rank={nodes.node_rank}",
            f"--master_addr={nodes.master_addr}",
            f"--master_port={nodes.master_port}",
        ]
    else:
        rendezvous = ["--standalone"]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *rendezvous,
        f"--nproc_per_node={nproc}",
        "-m",
        "ftx.cli",
        *args,
    ]


def relaunch(nproc: int, argv: list[str], *, output: str, nodes: Nodes | None = None) -> int:
    """Run ``ftx <argv>`` under torchrun with ``nproc`` processes writing to ``output``;
    return the launcher's exit code. The caller has validated the request already."""
    return subprocess.call(torchrun_command(nproc, argv, output=output, nodes=nodes))
