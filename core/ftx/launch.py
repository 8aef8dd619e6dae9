"""Multi-process launching: ``ftx run --nproc N`` re-executes itself under torchrun.

Every rank runs the same ``ftx run`` command line; ``--output`` is fixed before launching so all
ranks agree on the run directory, and only rank 0 writes to it.
"""

from __future__ import annotations

import subprocess
import sys


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


def torchrun_command(nproc: int, argv: list[str], *, output: str | None) -> list[str]:
    """The torchrun command line that runs ``ftx <argv>`` on ``nproc`` local processes."""
    args = strip_option(argv, "--nproc")
    if output is not None and not has_option(args, "--output", "-o"):
        args += ["--output", output]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "ftx.cli",
        *args,
    ]


def relaunch(nproc: int, argv: list[str], *, output: str) -> int:
    """Run ``ftx <argv>`` under torchrun with ``nproc`` processes writing to ``output``;
    return the launcher's exit code. The caller has validated the request already."""
    return subprocess.call(torchrun_command(nproc, argv, output=output))
