"""``ftx launch slurm``: write (never submit) a multi-node sbatch script for an ``ftx run``."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("launch")
def launch() -> None:
    """Scripts that start an ftx run on a cluster (written, not submitted)."""


@launch.command("slurm", context_settings={"ignore_unknown_options": True})
@click.option("--nodes", type=int, required=True, help="Machines (SBATCH --nodes).")
@click.option("--gpus-per-node", type=int, required=True, help="GPUs, one process each.")
@click.option("--job-name", default="ftx", show_default=True)
@click.option("--time", "time_limit", help="SBATCH --time, e.g. 04:00:00.")
@click.option("--partition", help="SBATCH --partition.")
@click.option("--port", type=int, default=29500, show_default=True, help="Rendezvous port.")
@click.option(
    "--script",
    type=click.Path(dir_okay=False),
    help="Write the script here (default: stdout); an existing file is not replaced.",
)
@click.argument("run_args", nargs=-1, type=click.UNPROCESSED)
def slurm(nodes, gpus_per_node, job_name, time_limit, partition, port, script, run_args):
    """An sbatch script running `ftx RUN_ARGS` (after --) on NODES x GPUS_PER_NODE processes:
    one torchrun per node, rendezvous from SLURM's variables.

    \b
    ftx launch slurm --nodes 2 --gpus-per-node 8 --script train.sbatch -- \\
        run --plugin fft --data chats.jsonl
    sbatch train.sbatch
    """
    from ftx.errors import BadInput
    from ftx.slurm import sbatch_script

    text = sbatch_script(
        list(run_args),
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        job_name=job_name,
        time_limit=time_limit,
        partition=partition,
        port=port,
    )
    if script is None:
        click.echo(text, nl=False)
        return
    path = Path(script)
    if path.exists():
        raise BadInput(f"--script {path} exists", hint="choose another path or remove it")
    path.write_text(text)
    path.chmod(0o755)
    click.echo(f"wrote {path}; submit it with: sbatch {path}", err=True)


COMMANDS = [launch]
