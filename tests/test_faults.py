"""Faults beyond a clean interrupt: ``kill -9`` at random moments (one aimed at a checkpoint being
written) followed by ``--resume``, and a disk that fills up while a checkpoint or the model is
written (a small tmpfs where this machine lets us mount one, else ``RLIMIT_FSIZE``; never
skipped).

The killed and starved runs are real ``ftx run`` processes started through :data:`LAUNCHER`,
which applies :func:`install_faults` first. The faults only widen windows (a pause after each
step, a long pause inside one checkpoint's writing) and fill the disk at a chosen moment, so
where each kill or full disk lands is certain rather than a race. The resumes run in-process.
"""

from __future__ import annotations

import errno
import io
import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from ftx.runner.checkpoints import checkpoint_step, newest_checkpoint
from ftx.runner.rundir import lock_path_for
from ftx.testing.commands import run_argv
from ftx.testing.integrity import leftovers, run_problems

ROOT = Path(__file__).resolve().parents[1]
STEPS = 8
LAUNCHER = (
    f"import os, runpy, sys; sys.path.insert(0, {str(ROOT)!r}); "
    "from tests.test_faults import install_faults; install_faults(os.environ, setattr); "
    "runpy.run_module('ftx.cli', run_name='__main__', alter_sys=True)"
)
"""``python -c LAUNCHER run …``: ``ftx run …`` with the ``FAULT_*`` settings of its environment."""


def install_faults(settings: Mapping[str, str], patch: Callable[[Any, str, Any], None]) -> None:
    """Patch transformers' Trainer as the ``FAULT_*`` entries of ``settings`` say (``patch``:
    ``setattr`` in a child, ``monkeypatch.setattr`` in-process):

    * ``FAULT_STEP_PAUSE=SECONDS``: sleep after every optimizer step, before its log and save;
    * ``FAULT_SLOW_CHECKPOINT=STEP:SECONDS``: sleep while writing ``checkpoint-STEP``, after its
      weights, optimizer and RNG state and before its ``trainer_state.json``;
    * ``FAULT_DISK_FULL=STEP:HOW``: once ``checkpoint-STEP`` is complete, the disk is full
      (:func:`fill_disk`).
    """
    import transformers
    from transformers.trainer_callback import CallbackHandler

    trainer = transformers.Trainer
    if "FAULT_STEP_PAUSE" in settings:
        pause, step_end = float(settings["FAULT_STEP_PAUSE"]), CallbackHandler.on_step_end

        def on_step_end(self, args, state, control, **kwargs):
            time.sleep(pause)
            return step_end(self, args, state, control, **kwargs)

        patch(CallbackHandler, "on_step_end", on_step_end)
    if "FAULT_SLOW_CHECKPOINT" in settings:
        step, seconds = settings["FAULT_SLOW_CHECKPOINT"].split(":")
        save_rng_state = trainer._save_rng_state

        def _save_rng_state(self, output_dir):
            save_rng_state(self, output_dir)
            if self.state.global_step == int(step):
                time.sleep(float(seconds))

        patch(trainer, "_save_rng_state", _save_rng_state)
    if "FAULT_DISK_FULL" in settings:
        step, how = settings["FAULT_DISK_FULL"].split(":", 1)
        save_checkpoint = trainer._save_checkpoint

        def _save_checkpoint(self, *args, **kwargs):
            save_checkpoint(self, *args, **kwargs)
            if self.state.global_step == int(step):
                fill_disk(how)

        patch(trainer, "_save_checkpoint", _save_checkpoint)


def fill_disk(how: str) -> None:
    """``rlimit:BYTES``: no file of this process may grow past BYTES (SIGXFSZ ignored, so such a
    write fails with EFBIG instead of killing the process). ``fill:FILE:BYTES``: FILE takes all
    the free space of its filesystem but BYTES."""
    import resource

    kind, _, arg = how.partition(":")
    if kind == "rlimit":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(arg), hard))
        return
    path, room = arg.rsplit(":", 1)
    stat = os.statvfs(Path(path).parent)
    left = stat.f_bavail * stat.f_frsize - int(room)
    with open(path, "wb") as fh:
        while left > 0:
            left -= fh.write(b"\0" * min(left, 2**20))


# -- helpers ---------------------------------------------------------------------------------
def run_args(model: Path, data: dict[str, Path], out: Path, plugin: str = "fft") -> list[str]:
    train = {"max_steps": STEPS, "save_steps": 1, "logging_steps": 1}
    train["per_device_train_batch_size"] = 4
    return run_argv(plugin, model=model, data=data["train"], output=out, train=train)


class Child:
    """An ``ftx run`` process with faults; its output goes to ``OUT.log`` beside the run."""

    def __init__(self, argv: list[str], out: Path, faults: Mapping[str, str]) -> None:
        self.log = out.with_name(f"{out.name}.log")
        env = {**os.environ, **faults}
        env.pop("FTX_RUN_LOCK", None)
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCHER, *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until(self, ready: Callable[[], bool], timeout: float = 180) -> None:
        """Poll ``ready`` every few milliseconds while the child runs."""
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                pytest.fail(f"ftx run ended (exit {self.proc.returncode}) first:\n{self.output()}")
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail(f"timed out waiting on ftx run:\n{self.output()}")
            time.sleep(0.003)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=60) == -signal.SIGKILL, self.output()

    def wait(self) -> int:
        return self.proc.wait(timeout=300)


def newest_step(folder: Path) -> int:
    checkpoint = newest_checkpoint(folder)
    return checkpoint_step(checkpoint) if checkpoint else 0


def assert_whole_run(out: Path, *, plugin: str, resumed_from: str) -> None:
    """Finished at exactly STEPS from ``resumed_from``, every step logged once, loadable
    artifacts, nothing half-written left (:func:`ftx.testing.integrity.run_problems`)."""
    assert run_problems(out, steps=STEPS, adapter=plugin == "qlora") == []
    assert json.loads((out / "summary.json").read_text())["resumed_from"] == resumed_from


def assert_checkpoint_loads(checkpoint: Path) -> None:
    import torch
    from safetensors.torch import load_file

    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["global_step"] == checkpoint_step(checkpoint)
    weights = list(checkpoint.glob("*.safetensors"))
    assert weights and all(load_file(str(p)) for p in weights)
    torch.load(checkpoint / "optimizer.pt", weights_only=True)


# -- kill -9 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("plugin, seed", [("fft", 1), ("qlora", 2)])
def test_kill_9_at_a_random_moment_then_resume(
    plugin, seed, ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path
):
    """Killed at a moment drawn after checkpoint-AFTER is complete (the pauses leave at least
    five more steps, so the kill always lands before the run ends), the run resumes from the
    newest complete checkpoint and ends whole at the configured step count."""
    rng = random.Random(seed)
    after, delay = rng.randint(1, 3), rng.uniform(0.0, 0.25)
    out = tmp_path / "run"
    child = Child(
        run_args(ftx_tiny_model, ftx_tiny_data, out, plugin), out, {"FAULT_STEP_PAUSE": "0.1"}
    )
    child.wait_until(lambda: newest_step(out / "checkpoints") >= after)
    time.sleep(delay)
    child.kill()
    kept = newest_checkpoint(out / "checkpoints")
    assert kept is not None and after <= checkpoint_step(kept) < STEPS
    # The killed owner's lock file stays; the kernel dropped its flock, so it blocks nothing.
    lock = lock_path_for(out)
    assert lock.read_text() == str(child.proc.pid)
    r = ftx_cli("run", "--resume", "--output", str(out))
    assert r.exit_code == 0, r.output
    assert_whole_run(out, plugin=plugin, resumed_from=kept.name)
    assert not lock.exists()


@pytest.mark.parametrize("step", [1, 3], ids=["first-checkpoint", "later-checkpoint"])
def test_kill_9_while_a_checkpoint_is_written(
    step, ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path
):
    """Killed as soon as ``checkpoint-STEP`` appears (its writing is held open long enough that
    its ``trainer_state.json`` cannot exist yet): that checkpoint is never resumed from. Without
    an earlier one, --resume refuses and says to start again. With one, the resume removes the
    cut checkpoint even when it saves at other steps from now on (else it would count towards
    save_total_limit, push out a complete one and, never written again, stay forever)."""
    out = tmp_path / "run"
    partial = out / "checkpoints" / f"checkpoint-{step}"
    child = Child(
        run_args(ftx_tiny_model, ftx_tiny_data, out), out, {"FAULT_SLOW_CHECKPOINT": f"{step}:60"}
    )
    child.wait_until(partial.is_dir)
    child.kill()
    assert not (partial / "trainer_state.json").exists()
    if step == 1:
        r = ftx_cli("run", "--resume", "--output", str(out))
        assert r.exit_code == 2, r.output
        assert "no complete checkpoint" in r.stderr
        # The hint's command starts the same run again (it once lacked --config, and with
        # --plugin added ran the demo data instead).
        hinted = " ".join(r.stderr.split()).split("with: ftx ", 1)[1]
        assert hinted == f"run --config {out / 'config.yaml'} --overwrite --output {out}"
        r = ftx_cli(*shlex.split(hinted))
        assert r.exit_code == 0, r.output
        assert run_problems(out, steps=STEPS) == []
        assert str(ftx_tiny_data["train"]) in (out / "config.yaml").read_text()
        return
    r = ftx_cli("run", "--resume", "--output", str(out), "--set", f"train.save_steps={STEPS}")
    assert r.exit_code == 0, r.output
    assert_whole_run(out, plugin="fft", resumed_from=f"checkpoint-{step - 1}")
    # The new save_steps took effect (the Trainer would keep the checkpoint's 1).
    saved = sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*"))
    assert saved == [f"checkpoint-{step - 1}", f"checkpoint-{STEPS}"]


def test_a_signal_while_the_report_is_written(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path, monkeypatch
):
    """SIGTERM landing while the finished run writes its report (found by bench/soak.py: during
    the first ``import matplotlib``, which it leaves half-imported) ends the run as interrupted,
    exit 130, although recording that fails too (the import breaks again: AttributeError); the
    resume exports again and finishes. It used to end in a second traceback and exit 1."""
    import ftx.report

    def write_reports(run_dir, summary):
        if summary["status"] == "finished":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        raise AttributeError("module 'matplotlib' has no attribute 'get_data_path'")

    monkeypatch.setattr(ftx.report, "write_reports", write_reports)
    out = tmp_path / "run"
    r = ftx_cli(*run_args(ftx_tiny_model, ftx_tiny_data, out))
    assert r.exit_code == 130, r.output
    assert "could not record the interrupted run" in r.stderr and "Traceback" not in r.output
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
    monkeypatch.undo()
    r = ftx_cli("run", "--resume", "--output", str(out))
    assert r.exit_code == 0, r.output
    assert_whole_run(out, plugin="fft", resumed_from=f"checkpoint-{STEPS}")


# -- a full disk -----------------------------------------------------------------------------
class SmallDisk:
    """Where a run may run out of room: a tmpfs of ``size`` bytes mounted at ``root`` when this
    machine allows it (root, mount permitted), else ``root`` is a plain folder and the room is
    a file-size limit (``RLIMIT_FSIZE``), which only a child process can take."""

    def __init__(self, root: Path, size: int) -> None:
        self.root = root
        root.mkdir()
        self.mounted = False
        if os.geteuid() == 0:
            try:
                done = subprocess.run(
                    ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)],
                    capture_output=True,
                    check=False,
                )
                self.mounted = done.returncode == 0
            except OSError:
                pass
        self.filler = root / "filler"

    def fault(self, step: int, room: int) -> dict[str, str]:
        """After ``checkpoint-STEP``, ``room`` bytes left (tmpfs) or no file may exceed ``room``
        bytes (RLIMIT_FSIZE)."""
        how = f"fill:{self.filler}:{room}" if self.mounted else f"rlimit:{room}"
        return {"FAULT_DISK_FULL": f"{step}:{how}"}

    def space_back(self) -> None:
        self.filler.unlink(missing_ok=True)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.root)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    disk = SmallDisk(tmp_path / "disk", size=8 * 2**20)
    yield disk
    disk.close()


def failing_run(ftx_cli, monkeypatch, argv, faults, *, in_process: bool) -> tuple[int, str]:
    """Run ``ftx run`` with ``faults`` in-process (a tmpfs fills only itself) or in a child (a
    file-size limit would bind this process too); ``(exit code, stderr)``."""
    if in_process:
        install_faults(faults, monkeypatch.setattr)
        r = ftx_cli(*argv)
        monkeypatch.undo()
        return r.exit_code, r.stderr
    child = Child(argv, Path(argv[argv.index("--output") + 1]), faults)
    return child.wait(), child.output()


def assert_failed_for_want_of_room(rc: int, stderr: str, out: Path, cause: str, kept: str):
    """Exit 1, one ``error:`` line naming the cause, the run directory, the intact checkpoint
    and the resume command; no traceback; ``summary.json`` failed with the cause."""
    assert rc == 1, stderr
    assert "Traceback" not in stderr
    [line] = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: {cause} while writing to {out} (")
    assert f"the last complete checkpoint, {kept}, is intact" in line
    assert line.endswith(f"ftx run --resume --output {out}")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"].startswith(f"{cause}: ")


def test_a_full_disk_while_checkpointing(
    small_disk, ftx_cli, ftx_tiny_model, ftx_tiny_data, monkeypatch
):
    """checkpoint-2 does not fit: its weights do, its optimizer state does not (torch's writer
    names no cause; ftx reads it from the filesystem). checkpoint-1 stays whole, the cut one is
    removed, and --resume continues from checkpoint-1 once there is room again."""
    out = small_disk.root / "run"
    weights = (ftx_tiny_model / "model.safetensors").stat().st_size
    faults = small_disk.fault(1, room=weights + 64 * 1024)
    argv = run_args(ftx_tiny_model, ftx_tiny_data, out)
    rc, stderr = failing_run(ftx_cli, monkeypatch, argv, faults, in_process=small_disk.mounted)
    cause = "no space left on device" if small_disk.mounted else "file too large"
    assert_failed_for_want_of_room(rc, stderr, out, cause, "checkpoint-1")
    assert [p.name for p in (out / "checkpoints").glob("checkpoint-*")] == ["checkpoint-1"]
    assert_checkpoint_loads(out / "checkpoints" / "checkpoint-1")
    assert not (out / "model").exists() and leftovers(out) == []
    small_disk.space_back()
    r = ftx_cli("run", "--resume", "--output", str(out))
    assert r.exit_code == 0, r.output
    assert_whole_run(out, plugin="fft", resumed_from="checkpoint-1")


def test_a_full_disk_while_exporting(ftx_cli, ftx_tiny_model, ftx_tiny_data, tmp_path):
    """After the last checkpoint no file may exceed half the weights (RLIMIT_FSIZE, in a child;
    the portable way): model/ is not written, nothing half-written is left, and --resume goes
    straight to the export."""
    out = tmp_path / "run"
    limit = (ftx_tiny_model / "model.safetensors").stat().st_size // 2
    child = Child(
        run_args(ftx_tiny_model, ftx_tiny_data, out),
        out,
        {"FAULT_DISK_FULL": f"{STEPS}:rlimit:{limit}"},
    )
    rc = child.wait()
    assert_failed_for_want_of_room(rc, child.output(), out, "file too large", f"checkpoint-{STEPS}")
    assert "raise the file size limit (ulimit -f)" in child.output()
    assert not (out / "model").exists() and leftovers(out) == []
    assert_checkpoint_loads(out / "checkpoints" / f"checkpoint-{STEPS}")
    r = ftx_cli("run", "--resume", "--output", str(out))
    assert r.exit_code == 0, r.output
    assert not re.search(r"^\s*step\s+\d+/", r.stderr, re.M)  # nothing trained again
    assert_whole_run(out, plugin="fft", resumed_from=f"checkpoint-{STEPS}")


# -- the pieces --------------------------------------------------------------------------------
def test_disk_full_is_recognised_however_the_writer_words_it(tmp_path, monkeypatch):
    import ftx.runner.failures as failures

    cause = failures.disk_full_cause
    assert cause(OSError(errno.ENOSPC, "No space left on device")) == "no space left on device"
    assert cause(OSError(errno.EFBIG, "File too large")) == "file too large"
    assert cause(OSError(errno.EDQUOT, "Disk quota exceeded")) == "disk quota exceeded"
    safetensors = Exception("Error while serializing: I/O error: File too large (os error 27)")
    assert cause(safetensors) == "file too large"
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("saving failed") from inner
    except RuntimeError as chained:
        assert cause(chained) == "no space left on device"
    torch_writer = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 9")
    monkeypatch.setattr(failures, "free_bytes", lambda where: 4096)
    assert cause(torch_writer, tmp_path) == "no space left on device"
    monkeypatch.setattr(failures, "free_bytes", lambda where: 2**40)
    assert cause(torch_writer, tmp_path) is None  # room enough: some other write failure
    assert cause(OSError(errno.ENOENT, "No such file or directory")) is None
    assert cause(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) is None


def test_a_failure_record_the_disk_cannot_take_is_reported_not_raised(tmp_path, monkeypatch):
    """RunRecord.finish says on the console that summary.json could not be written for a
    failed or interrupted run (the run's own error is the one that matters) and raises for a
    finished one (it is not finished on disk)."""
    from rich.console import Console

    import ftx.runner.execution as execution
    from ftx.runner.rundir import RunDirectory

    def no_room(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(execution, "write_summary", no_room)
    run_dir = RunDirectory(tmp_path, replace=False, resume=False, chosen_by_user=True)
    console = Console(file=io.StringIO(), width=200)
    record = execution.RunRecord(run_dir, {"status": "running"}, main=True, console=console)
    assert record.finish("failed", error="boom")["status"] == "failed"
    printed = console.file.getvalue()
    assert f"could not record the failed run in {tmp_path}: OSError:" in printed
    assert "No space left on device" in printed
    with pytest.raises(OSError):
        record.finish("finished")


def test_resume_clears_what_a_killed_run_left_half_written(tmp_path):
    """Temporaries of artifacts (``.tmp-*``, ``.old-*``) and checkpoints cut short go; complete
    checkpoints stay."""
    from ftx.runner.rundir import remove_temporaries

    (tmp_path / ".tmp-model-x").mkdir()
    (tmp_path / ".tmp-summary.json-y").write_text("{")
    (tmp_path / ".old-adapter-123").mkdir()
    for step, state in ((2, '{"global_step": 2}'), (3, None), (4, '{"global_')):
        folder = tmp_path / "checkpoints" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_text("weights")
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    remove_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["checkpoint-2"]


def test_metrics_of_a_killed_run_are_trimmed_whole(tmp_path):
    """On resume from checkpoint-2 the log keeps steps 1-2: later lines and a line cut short
    (a kill, a full disk) go, and the rewrite is atomic (no window without the early lines)."""
    from ftx.callbacks import MetricsLog

    path = tmp_path / "metrics.jsonl"
    rows = [{"step": n, "loss": 1.0 / n} for n in (1, 2, 3)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + '{"step": 4, "lo')
    MetricsLog(path, resume_step=2)
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows[:2]
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]
