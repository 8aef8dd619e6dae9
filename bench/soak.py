"""Soak: short runs, each interrupted once at a random moment (INT, TERM or KILL), then resumed.

Every run trains a tiny random model (``ftx.testing.tiny``) for ``--steps`` steps with a checkpoint
every two steps, held-out scoring before and after, the method rotating fft, sft, qlora. The
signal, a phase of the run and a moment in it are drawn from ``--seed``. The phases are what a
run directory goes through: *preparing* (from ``config.yaml``: scoring the base model, loading
it, building the trainer, up to the first logged step), *training* (steps and checkpoints, up to
the last checkpoint) and *finishing* (export, scoring ``model/``, the report, up to a finished
``summary.json``); the moment is uniform over the phase as long as it lasted in an uninterrupted
run of the same method (measured first, once per method; also the reference for the weights),
counted from the phase's start in the run itself. Then the run is continued as its message
says: ``ftx run --resume --output DIR``, or, when that answers that there is nothing to resume
(stopped before the first complete checkpoint: exit 2), started again with ``--overwrite``.

A run counts when it ends finished at exactly ``--steps`` steps, with every step logged once, a
``model/`` that ``AutoModelForCausalLM.from_pretrained`` loads, ``adapter/`` for qlora, both
held-out scores, and nothing half-written left (``ftx.testing.integrity.run_problems``). Goal:
all. The largest weight difference from the uninterrupted run is shown for information.
Results: ``bench/results/soak.json`` (``soak-quick.json`` with ``--quick``).

Usage::

    python bench/soak.py [--runs 20] [--steps 8] [--seed 0] [--workdir DIR] [--quick]
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import (
    FTX,
    USER_OMP_WAIT_POLICY,
    bench_parser,
    cleanup,
    log,
    markdown_table,
    save_results,
    workdir,
)

METHODS = ("fft", "sft", "qlora")
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
PHASES = ("preparing", "training", "finishing")
NOTHING_TO_RESUME = ("no complete checkpoint", "not an ftx run directory")
"""What ``--resume`` answers (exit 2) for a run stopped before it could be resumed."""


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def child_env() -> dict[str, str]:
    """This process's environment, less what ftx set in it (a held run lock, the OpenMP choice
    it made on import)."""
    env = {k: v for k, v in os.environ.items() if k != "FTX_RUN_LOCK"}
    if USER_OMP_WAIT_POLICY is None:
        env.pop("OMP_WAIT_POLICY", None)
    return env


def start(cmd: list[str], log_path: Path) -> subprocess.Popen:
    with log_path.open("w") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=child_env())


def finish(cmd: list[str], log_path: Path) -> tuple[int, str]:
    """Run ``cmd`` to its end; (exit code, its output)."""
    code = start(cmd, log_path).wait()
    return code, log_path.read_text(errors="replace")


def finished(out: Path) -> bool:
    from ftx.runner.checkpoints import read_json

    return read_json(out / "summary.json").get("status") == "finished"


def phase_starts(out: Path, steps: int) -> dict[str, Callable[[], bool]]:
    """For each phase (and ``end``), whether the run in ``out`` has reached its start."""
    from ftx.runner.checkpoints import is_complete

    last = out / "checkpoints" / f"checkpoint-{steps}"
    return {
        "preparing": (out / "config.yaml").exists,
        "training": (out / "metrics.jsonl").exists,
        "finishing": lambda: is_complete(last),
        "end": lambda: finished(out),
    }


def wait_for(reached: Callable[[], bool], proc: subprocess.Popen) -> bool:
    """Poll until ``reached()`` (True) or ``proc`` ends (False)."""
    while not reached():
        if proc.poll() is not None:
            return False
        time.sleep(0.002)
    return True


def landed(out: Path, steps: int) -> str:
    """Where the run stood when the signal was sent: its newest complete checkpoint, and a
    checkpoint being written."""
    from ftx.runner.checkpoints import checkpoint_step, checkpoints_in, is_complete

    if finished(out):
        return "finished, exiting"
    folder = out / "checkpoints"
    done = [checkpoint_step(p) for p in checkpoints_in(folder) if is_complete(p)]
    writing = [p.name for p in checkpoints_in(folder) if not is_complete(p)]
    newest = max(done, default=0)
    if newest == 0:
        where = "before the first checkpoint"
    elif newest < steps:
        where = f"training (checkpoint-{newest} done)"
    else:
        where = "after training"
    return f"{where}, writing {writing[0]}" if writing else where


def weight_difference(a: Path, b: Path) -> float | None:
    """Largest absolute difference between the weights of two ``model/`` directories."""
    from safetensors.torch import load_file

    try:
        left, right = (
            load_file(str(a / "model.safetensors")),
            load_file(str(b / "model.safetensors")),
        )
    except OSError:
        return None
    return max(float((left[k].float() - right[k].float()).abs().max()) for k in left)


def problems_of(out: Path, steps: int, method: str) -> list[str]:
    from ftx.runner.checkpoints import read_json
    from ftx.testing.integrity import run_problems

    problems = run_problems(out, steps=steps, adapter=method == "qlora")
    summary = read_json(out / "summary.json")
    problems += [
        f"no {key} in summary.json" for key in ("eval_before", "eval_after") if key not in summary
    ]
    return problems


class Soak:
    def __init__(self, work: Path, steps: int) -> None:
        from ftx.testing.tiny import make_tiny_model, write_tiny_dataset

        self.work, self.steps = work, steps
        self.model = make_tiny_model(work / "model")
        self.train = write_tiny_dataset(work / "train.jsonl", rows=48, seed=0)
        self.heldout = write_tiny_dataset(work / "heldout.jsonl", rows=6, seed=1)
        self.lasted: dict[str, dict[str, float]] = {}  # method -> phase -> seconds
        self.reference: dict[str, Path] = {}

    def command(self, method: str, out: Path) -> list[str]:
        from ftx.testing.commands import run_argv

        train = {"max_steps": self.steps, "save_steps": 2, "logging_steps": 1}
        train["per_device_train_batch_size"] = 4
        sets = [f"data.eval={self.heldout}", "data.eval_max_new_tokens=4"]
        argv = run_argv(
            method, model=self.model, data=self.train, output=out, train=train, sets=sets
        )
        return [*FTX, *argv]

    def measure(self, method: str) -> None:
        """One uninterrupted run: how long each phase lasts, and the reference weights."""
        out = self.work / f"reference-{method}"
        proc = start(self.command(method, out), out.with_suffix(".log"))
        reached = {}
        for phase, started in phase_starts(out, self.steps).items():
            wait_for(started, proc)
            reached[phase] = time.perf_counter()
        times = list(reached.values())
        self.lasted[method] = {
            phase: round(end - begin, 3)
            for phase, begin, end in zip(PHASES, times[:-1], times[1:], strict=True)
        }
        code = proc.wait()
        problems = problems_of(out, self.steps, method)
        if code != 0 or problems:
            sys.exit(f"the uninterrupted {method} run is not whole (exit {code}): {problems}")
        self.reference[method] = out / "model"
        log(f"uninterrupted {method}: phases last {self.lasted[method]} s")

    def one(
        self, index: int, method: str, sig: signal.Signals, phase: str, share: float
    ) -> dict[str, Any]:
        """Run ``index``: interrupt it ``share`` of the way into ``phase`` (as long as that
        phase lasted uninterrupted), continue it, check it."""
        out = self.work / f"run-{index:02d}-{method}"
        cmd = self.command(method, out)
        proc = start(cmd, out.with_suffix(".log"))
        at = share * self.lasted[method][phase]
        row: dict[str, Any] = {
            "run": index,
            "method": method,
            "signal": sig.name,
            "phase": phase,
            "at_s": round(at, 3),
        }
        if wait_for(phase_starts(out, self.steps)[phase], proc):
            deadline = time.perf_counter() + at
            while proc.poll() is None and time.perf_counter() < deadline:
                time.sleep(0.002)
        if proc.poll() is None:
            row["landed"] = landed(out, self.steps)
            proc.send_signal(sig)
        else:
            row["landed"] = "finished first"
        row["exit"] = proc.wait()
        row["lock_left"] = (out.parent / f".{out.name}.lock").exists()
        row["then"] = "nothing"
        if row["exit"] != 0:
            code, said = finish(
                [*FTX, "run", "--resume", "--output", str(out)], out.with_suffix(".resume.log")
            )
            row["then"] = "resume"
            if code == 2 and "already finished" in said:
                row["then"] = "nothing (finished before the signal)"
            elif code == 2 and any(reason in said for reason in NOTHING_TO_RESUME):
                code, _ = finish([*cmd, "--overwrite"], out.with_suffix(".again.log"))
                row["then"] = "start again"
            row["then_exit"] = code
        row["problems"] = problems_of(out, self.steps, method)
        row["weight_difference"] = weight_difference(self.reference[method], out / "model")
        row["ok"] = not row["problems"]
        return row


def table(rows: list[dict[str, Any]]) -> str:
    headers = ["#", "method", "signal", "phase", "s into it", "landed", "exit", "then", "then exit"]
    headers += ["max |Δw| vs uninterrupted", "result"]
    body = [
        [
            r["run"],
            r["method"],
            r["signal"],
            r["phase"],
            r["at_s"],
            r["landed"],
            r["exit"],
            r["then"],
            r.get("then_exit"),
            r["weight_difference"],
            "ok" if r["ok"] else "; ".join(r["problems"]),
        ]
        for r in rows
    ]
    return markdown_table(headers, body)


def main() -> None:
    parser = bench_parser(__doc__, quick="5 runs", ignore=("batch", "eval-limit"))
    parser.add_argument("--runs", type=int, default=20, help="interrupted runs (default 20)")
    parser.add_argument("--steps", type=int, default=8, help="training steps per run")
    parser.add_argument("--seed", type=int, default=0, help="draws the signals and moments")
    parser.add_argument("--workdir", help="keep the run directories here")
    args = parser.parse_args()
    runs = 5 if args.quick else args.runs
    work = workdir("soak", args.workdir)
    from ftx.runner import quiet_libraries

    quiet_libraries()  # no progress bars from the loading checks
    soak = Soak(work, args.steps)
    for method in METHODS[: min(runs, len(METHODS))]:
        soak.measure(method)
    rng = random.Random(args.seed)
    rows = []
    for index in range(runs):
        method = METHODS[index % len(METHODS)]
        sig, phase, share = rng.choice(SIGNALS), rng.choice(PHASES), rng.random()
        r = soak.one(index, method, sig, phase, share)
        rows.append(r)
        result = "ok" if r["ok"] else "; ".join(r["problems"])
        log(f"run {index}: {method} {sig.name} {r['at_s']} s into {phase}, {r['landed']}: {result}")
    good = sum(r["ok"] for r in rows)
    phases = Counter(r["landed"].split(" (")[0].split(",")[0] for r in rows)
    command = " ".join(["python", "bench/soak.py", *sys.argv[1:]])
    verdict = f"{good}/{runs} finished with the exact step count and intact artifacts"
    text = "\n\n".join(
        [
            f"command: {command}\nCPU: {cpu_name()} ({os.cpu_count()} cores)",
            table(rows),
            "landed: " + ", ".join(f"{n} {phase}" for phase, n in phases.items()),
            verdict,
        ]
    )
    print(text)
    save_results(
        "soak-quick" if args.quick else "soak",
        {
            "command": command,
            "cpu": cpu_name(),
            "runs": runs,
            "steps": args.steps,
            "seed": args.seed,
            "uninterrupted_phases_s": soak.lasted,
            "rows": rows,
            "good": good,
            "verdict": verdict,
            "tables_markdown": text,
        },
    )
    cleanup(work, args.workdir)
    if good != runs:
        sys.exit(1)


if __name__ == "__main__":
    main()
