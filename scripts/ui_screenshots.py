"""Screenshots of every ``ftx ui`` page for the README, taken in the same headless Chromium the
browser tests drive (:mod:`ftx.testing.browser`).

Usage::

    python scripts/ui_screenshots.py --demo          # the README's: real demo runs (minutes, CPU)
    python scripts/ui_screenshots.py                 # the same on a tiny random model (seconds)
    python scripts/ui_screenshots.py --runs runs     # the pages of an existing runs root

``--demo`` submits a qlora run of the demo (SmolLM2 on the coffee-order task, model and data left
empty in the form) through the new-run form, photographs it live and finished, runs sft on the
demo from the CLI alongside, compares the two and chats with the qlora run. Without ``--demo``
the same happens on a tiny random model and data (:mod:`ftx.testing.tiny`). With ``--runs`` it
only reads: the newest finished run, the two newest compared. Runs it makes live under
``$TMPDIR/ftx-ui-screenshots`` and are removed at the end.

Writes ``runs.png``, ``run-live.png``, ``run-finished.png``, ``new-run.png``, ``compare.png``,
``plan.png``, ``chat.png`` into ``--out`` (default ``docs/ui``). Downloads nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ftx.testing.browser import browser_missing, chromium, serve_ui  # noqa: E402
from tests.browser.pages import (  # noqa: E402
    all_css,
    by_css,
    fill,
    open_new_run,
    run_form_fields,
    text,
    wait,
)

RUN_TIMEOUT = 1800  # a demo run on busy CPU cores


def tiny_inputs(work: Path) -> tuple[Path, dict[str, Path]]:
    """A tiny random model and its train/held-out files under ``work``."""
    from ftx.testing.tiny import make_tiny_model, write_tiny_dataset

    model = make_tiny_model(work / "model")
    data = {
        "train": write_tiny_dataset(work / "train.jsonl", rows=48, seed=0),
        "eval": write_tiny_dataset(work / "eval.jsonl", rows=6, seed=1),
    }
    return model, data


def plan_model(work: Path) -> Path:
    """A directory with Llama-2-7B's ``config.json``: what the plan page plans for."""
    from tests.model_configs import llama_7b

    llama_7b().save_pretrained(work / "llama-2-7b")
    return work / "llama-2-7b"


def until_status(driver: Any, *statuses: str, timeout: float = RUN_TIMEOUT) -> None:
    wait(driver, lambda d: text(d, "#run-status") in statuses, timeout, f"never {statuses}")


def shoot(driver: Any, out: Path, name: str) -> None:
    """Save the whole page (its full height, at the window's width) as ``out/name.png``, from
    its top, with no field focused."""
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    driver.execute_script("window.scrollTo(0, 0)")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, max(600, min(int(height) + 120, 2400)))
    time.sleep(0.3)  # let the layout settle at the new size before the capture
    driver.save_screenshot(str(out / f"{name}.png"))
    driver.set_window_size(width, 900)
    print(f"wrote {out / name}.png")


def step_of(driver: Any) -> tuple[int, int]:
    """The run page's ``#run-step`` as ``(done, total)``; ``(0, 0)`` before the first step."""
    done, _, total = text(driver, "#run-step").partition("/")
    return (int(done), int(total)) if done.strip().isdigit() and total.strip().isdigit() else (0, 0)


def make_runs(driver: Any, url: str, runs: Path, work: Path, out: Path, demo: bool) -> list[str]:
    """Start the runs the pages show and photograph the form and the run page (live at a third
    of its steps, then finished): qlora from the new-run form, and alongside it one more run
    from the CLI (sft on the demo, fft on the tiny model). Returns the two runs to compare."""
    if demo:  # empty model and data fields: the demo, as on a fresh install
        form = {"output": "qlora-demo", "data-eval_limit": 40}
        other = ["--plugin", "sft", "--set", "data.eval_limit=40"]
        message = "can I get two large lattes and a small iced tea to go?"
    else:
        model, data = tiny_inputs(work)
        form = run_form_fields(model, data, "qlora-tiny", **{"train-max_steps": 300})
        other = [
            "--plugin", "fft", "--model", str(model), "--data", str(data["train"]),
            "--set", f"data.eval={data['eval']}", "--set", "train.max_steps=40",
            "--set", "train.learning_rate=5e-3", "--set", "train.logging_steps=1",
        ]  # fmt: skip
        message = "reverse: blue apple green"
    name = "sft-demo" if demo else "fft-tiny"
    argv = [sys.executable, "-m", "ftx", "run", *other, "--output", str(runs / name)]
    cli = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    open_new_run(driver, url, "qlora")
    fill(driver, form)
    preview = f"/{form['output']} "  # the command preview has caught up with the typing
    wait(driver, lambda d: preview in text(d, "pre#command") + " ", 60, "no command preview")
    shoot(driver, out, "new-run")
    by_css(driver, "button#submit").click()
    wait(driver, lambda d: d.current_url.endswith(f"/runs/{form['output']}"), 120, "no run page")
    wait(driver, lambda d: step_of(d)[0] >= max(3, step_of(d)[1] // 3), RUN_TIMEOUT, "no steps")
    shoot(driver, out, "run-live")
    until_status(driver, "finished")
    shoot(driver, out, "run-finished")
    if cli.wait(timeout=RUN_TIMEOUT) != 0:
        raise RuntimeError(f"the CLI run {name} failed: {' '.join(argv)}")
    chat(driver, url, form["output"], message, out)
    return [form["output"], name]


def chat(driver: Any, url: str, run: str, message: str, out: Path) -> None:
    driver.get(f"{url}/runs/{run}/chat")
    by_css(driver, "textarea#chat-input").send_keys(message)
    by_css(driver, "button#chat-send").click()
    wait(driver, lambda d: all_css(d, "#chat-log .msg.assistant.done"), 300, "no answer")
    shoot(driver, out, "chat")


def existing_runs(runs: Path) -> list[str]:
    """The two newest finished runs under ``runs`` (by their summary.json's time)."""
    done = []
    for summary in runs.glob("*/summary.json"):
        try:
            if json.loads(summary.read_text()).get("status") == "finished":
                done.append((summary.stat().st_mtime, summary.parent.name))
        except (OSError, ValueError):
            continue
    return [name for _, name in sorted(done, reverse=True)[:2]]


def take(url: str, runs: Path, out: Path, work: Path, mode: str) -> None:
    """Photograph every page; ``mode`` is ``tiny``, ``demo`` (both make runs) or ``existing``."""
    driver = chromium(width=1280, height=900)
    try:
        if mode == "existing":
            compared = existing_runs(runs)
            open_new_run(driver, url, "qlora")
            shoot(driver, out, "new-run")
            if compared:
                driver.get(f"{url}/runs/{compared[0]}")
                shoot(driver, out, "run-finished")
                chat(driver, url, compared[0], "Hello!", out)
        else:
            compared = make_runs(driver, url, runs, work, out, demo=mode == "demo")
        driver.get(f"{url}/runs")
        shoot(driver, out, "runs")
        query = "&".join(f"run={name}" for name in compared)
        driver.get(f"{url}/compare?{query}")
        shoot(driver, out, "compare")
        driver.get(f"{url}/plan?model={plan_model(work)}&gpu_mem=16GB&seq_len=1024&batch_size=4")
        wait(driver, lambda d: all_css(d, "#plan-bars .plan-bar"), 120, "no plan bars")
        shoot(driver, out, "plan")
    finally:
        driver.quit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--runs", type=Path, help="photograph an existing runs root (read only)")
    source.add_argument(
        "--demo", action="store_true", help="make the runs on the real demo (minutes on a CPU)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    args = parser.parse_args()
    missing = browser_missing()
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    mode = "existing" if args.runs else "demo" if args.demo else "tiny"
    work = Path(tempfile.gettempdir()) / "ftx-ui-screenshots"  # a stable path: pages show it
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    runs = args.runs.resolve() if args.runs else work / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    try:
        with serve_ui(runs, log=work / "ui.log", stop=args.runs is None) as url:
            take(url, runs, args.out, work, mode)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
