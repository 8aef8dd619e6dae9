"""Several machines: two ``ftx run --nnodes 2`` "nodes" on this machine (gloo, one rank each)
match one process with the same global batch, write one run directory, and resume after both
nodes are killed; bad launch flags exit 2 before any process starts; ``ftx launch slurm``'s
script parses and starts one torchrun per node from SLURM's variables; ``srun`` tasks are
adopted as ranks."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftx.testing.commands import run_argv

TRAIN = {"max_steps": 6, "logging_steps": 1, "learning_rate": 5e-3, "save_steps": 1}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def argv(model, data, out, batch: int) -> list[str]:
    train = {**TRAIN, "per_device_train_batch_size": batch}
    return run_argv("fft", model=model, data=data["train"], output=out, train=train)


HANG = """
import os

step = int(os.environ["FTX_TEST_HANG_AT_STEP"])
from ftx.callbacks import StopOnSignal

original = StopOnSignal.on_step_end


def on_step_end(self, args, state, control, **kwargs):
    if state.global_step == step:
        import time

        time.sleep(600)  # the machine stops answering here; the test kills it
    return original(self, args, state, control, **kwargs)


StopOnSignal.on_step_end = on_step_end
"""


def env(hang_dir: Path | None = None) -> dict[str, str]:
    out = dict(os.environ)
    for name in ("FTX_RUN_LOCK", "RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR"):
        out.pop(name, None)
    if hang_dir is not None:  # every process of the run hangs after this step (sitecustomize)
        (hang_dir / "sitecustomize.py").write_text(HANG)
        out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hang_dir), out.get("PYTHONPATH")]))
        out["FTX_TEST_HANG_AT_STEP"] = "4"
    return out


def node(
    args: list[str], rank: int, port: int, log: Path, hang_dir: Path | None = None
) -> subprocess.Popen:
    """One "machine": ``ftx run … --nnodes 2 --node-rank RANK`` in its own process group."""
    flags = ["--nnodes", "2", "--node-rank", str(rank), "--master-addr", "127.0.0.1"]
    flags += ["--master-port", str(port)]
    with log.open("w") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "ftx.cli", *args, *flags],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env(hang_dir),
            start_new_session=True,
        )


def two_nodes(args: list[str], tmp_path: Path, tag: str) -> tuple[int, int, str]:
    port = free_port()
    logs = [tmp_path / f"{tag}-node{r}.log" for r in (0, 1)]
    procs = [node(args, r, port, logs[r]) for r in (0, 1)]
    codes = [p.wait(timeout=600) for p in procs]
    return codes[0], codes[1], "\n".join(f"--- {p.name}\n{p.read_text()}" for p in logs)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), children first."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def curve(run: Path) -> list[float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def ftx(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "ftx.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env())


@pytest.fixture(scope="module")
def one_process(ftx_tiny_model, ftx_tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "run"
    result = ftx(*argv(ftx_tiny_model, ftx_tiny_data, out, 8))
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def test_two_nodes_match_one_process(one_process, ftx_tiny_model, ftx_tiny_data, tmp_path):
    out = tmp_path / "two"
    code0, code1, logs = two_nodes(argv(ftx_tiny_model, ftx_tiny_data, out, 4), tmp_path, "run")
    assert (code0, code1) == (0, 0), logs[-4000:]
    # The existing 2-rank test's tolerance (tests/test_fft_distributed.py).
    assert curve(out) == pytest.approx(curve(one_process), rel=1e-3)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["engine"].startswith("ddp × 2")
    # One run directory, written once: one model/, no sibling directories, one summary line.
    assert len(list((out / "model").glob("*.safetensors"))) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["two"]
    assert logs.count("step     6/6") == 1  # only global rank 0 speaks


@pytest.mark.slow  # about 2 minutes on 2 cores: two 2-node launches of a tiny model
def test_killed_two_node_run_resumes(one_process, ftx_tiny_model, ftx_tiny_data, tmp_path):
    """Both nodes killed (-9, a preempted allocation) in step 4, after checkpoint-3, then
    resumed with --resume on both: the run finishes with the losses of one uninterrupted
    process."""
    out = tmp_path / "two"
    args = argv(ftx_tiny_model, ftx_tiny_data, out, 4)
    port = free_port()
    logs = [tmp_path / f"first-node{r}.log" for r in (0, 1)]
    procs = [node(args, r, port, logs[r], hang_dir=tmp_path) for r in (0, 1)]
    deadline = time.monotonic() + 300
    while not (out / "checkpoints" / "checkpoint-3" / "trainer_state.json").exists():
        assert all(p.poll() is None for p in procs), "\n".join(x.read_text() for x in logs)
        assert time.monotonic() < deadline, "no checkpoint-3 in time"
        time.sleep(0.05)
    # torchrun starts its workers in sessions of their own: kill the whole tree of each node.
    doomed = [pid for proc in procs for pid in [proc.pid, *descendants(proc.pid)]]
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for proc in procs:
        proc.wait(timeout=60)
    assert json.loads((out / "summary.json").read_text())["status"] == "running"
    resume = ["run", "--resume", "--output", str(out)]
    code0, code1, text = two_nodes(resume, tmp_path, "resume")
    assert (code0, code1) == (0, 0), text[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["steps"] == 6
    assert summary["resumed_from"].startswith("checkpoint-")
    assert curve(out) == pytest.approx(curve(one_process), rel=1e-3)  # every step once
    assert (out / "model" / "config.json").is_file()


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--nnodes", "2", "--node-rank", "0"], "needs --master-addr"),
        (["--nnodes", "2", "--node-rank", "2", "--master-addr", "h"], "node rank is 0 to 1"),
        (["--nnodes", "2", "--node-rank", "-1", "--master-addr", "h"], "node rank is 0 to 1"),
        (["--nproc", "0"], "at least 1 process"),
        (["--nnodes", "2", "--master-addr", "127.0.0.1", "--master-port", "70000"], "TCP port"),
    ],
)
def test_bad_launch_flags_exit_2_before_anything_runs(ftx_cli, tmp_path, flags, needle):
    out = tmp_path / "run"
    result = ftx_cli("run", "--plugin", "fft", "--output", str(out), *flags)
    assert result.exit_code == 2, result.output
    assert needle in result.output and not out.exists()


def test_port_in_use_on_node_rank_0(ftx_cli, tmp_path):
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        port = taken.getsockname()[1]
        flags = ["--nnodes", "2", "--master-addr", "127.0.0.1", "--master-port", str(port)]
        result = ftx_cli("run", "--plugin", "fft", "--output", str(tmp_path / "r"), *flags)
    assert result.exit_code == 2 and f"--master-port {port} is in use" in result.output


def test_nnodes_needs_one_output_for_every_node(ftx_cli):
    result = ftx_cli("run", "--plugin", "fft", "--nnodes", "2", "--master-addr", "h")
    assert result.exit_code == 2 and "--nnodes needs --output" in result.output


def test_more_processes_than_gpus():
    from ftx.context import DeviceInfo
    from ftx.errors import BadInput
    from ftx.launch import Nodes, check_launch

    gpus = DeviceInfo(kind="cuda", bf16=True, count=4, name="NVIDIA A100")
    check_launch(4, Nodes(), gpus, output=None)
    with pytest.raises(BadInput, match="--nproc 8: this machine has 4 GPUs"):
        check_launch(8, Nodes(), gpus, output=None)


def test_torchrun_command_for_a_node():
    from ftx.launch import Nodes, torchrun_command

    nodes = Nodes(2, 1, "10.0.0.1", 29400)
    args = ["run", "--plugin", "fft", "--nnodes", "2", "--node-rank=1", "--master-addr", "x"]
    cmd = torchrun_command(8, args, output="runs/x", nodes=nodes)
    assert "--standalone" not in cmd
    for flag in ("--nnodes=2", "--node_rank=1", "--master_addr=10.0.0.1", "--master_port=29400"):
        assert flag in cmd
    tail = cmd[cmd.index("ftx.cli") + 1 :]
    assert tail == ["run", "--plugin", "fft", "--output", "runs/x"]


def test_slurm_script_parses_and_starts_one_torchrun_per_node(ftx_cli, tmp_path):
    script = tmp_path / "train.sbatch"
    result = ftx_cli(
        "launch", "slurm", "--nodes", "2", "--gpus-per-node", "8", "--script", str(script),
        "--", "run", "--plugin", "fft", "--data", "my chats.jsonl",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = script.read_text()
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert "#SBATCH --nodes=2" in text and "#SBATCH --gpus-per-node=8" in text
    # Run it with stand-ins for scontrol, srun (two nodes) and python (prints its arguments).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stubs = {
        "scontrol": 'printf "gpu-a\\ngpu-b\\n"',
        "srun": 'for n in 0 1; do SLURM_NODEID=$n "${@:2}"; done',
        "python": 'echo "node $SLURM_NODEID: $*"',
    }
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    fake = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHON": "python"}
    fake |= {"SLURM_JOB_NODELIST": "gpu-[a-b]", "SLURM_NNODES": "2", "SLURM_JOB_ID": "77"}
    ran = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=fake)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert len(lines) == 2
    for rank, line in enumerate(lines):
        assert line.startswith(f"node {rank}: -m torch.distributed.run --nnodes=2 ")
        assert f"--node_rank={rank} --nproc_per_node=8" in line
        assert "--master_addr=gpu-a --master_port=29500 -m ftx.cli run" in line
        assert line.endswith("--plugin fft --data my chats.jsonl --output runs/fft-77")
    again = ftx_cli("launch", "slurm", "--nodes", "2", "--gpus-per-node", "8", "--script",
                    str(script), "--", "run")  # fmt: skip
    assert again.exit_code == 2 and "exists" in again.output


def test_slurm_refuses_what_it_sets(ftx_cli):
    result = ftx_cli("launch", "slurm", "--nodes", "2", "--gpus-per-node", "8", "--", "run",
                     "--nproc", "8")  # fmt: skip
    assert result.exit_code == 2 and "--nproc is set by the script" in result.output
    result = ftx_cli("launch", "slurm", "--nodes", "2", "--gpus-per-node", "8")
    assert result.exit_code == 2 and "give the run after --" in result.output


def test_srun_tasks_become_ranks():
    from ftx.errors import BadInput
    from ftx.ranks import adopt_slurm_tasks

    environ = {"SLURM_NTASKS": "16", "SLURM_PROCID": "9", "SLURM_LOCALID": "1"}
    environ |= {"SLURM_NTASKS_PER_NODE": "8(x2)", "MASTER_ADDR": "gpu-a"}
    assert adopt_slurm_tasks(environ)
    assert (environ["RANK"], environ["WORLD_SIZE"], environ["LOCAL_RANK"]) == ("9", "16", "1")
    assert environ["LOCAL_WORLD_SIZE"] == "8" and environ["MASTER_PORT"] == "29500"
    assert not adopt_slurm_tasks({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"})
    assert not adopt_slurm_tasks({"RANK": "3", "SLURM_NTASKS": "4", "SLURM_PROCID": "1"})
    with pytest.raises(BadInput, match="without MASTER_ADDR"):
        adopt_slurm_tasks({"SLURM_NTASKS": "4", "SLURM_PROCID": "1"})
