"""Screenshots of every ``ftx ui`` page for the README, taken in the same headless Chromium the
browser tests drive (:mod:`ftx.testing.browser`).

Usage::

    python scripts/ui_screenshots.py                 # tiny runs made here, PNGs into docs/ui/
    python scripts/ui_screenshots.py --runs runs     # the pages of an existing runs root

Without ``--runs`` it builds a tiny random model and data (:mod:`ftx.testing.tiny`) in a temporary
folder and makes the runs the pages show: an sft run submitted through the new-run form, an fft
run from the CLI, and a longer qlora run photographed live, then stopped with the Stop button.
With ``--runs`` it only reads: the run pages show the newest finished run (and the newest running
one, if any), compare the two newest finished runs.

Writes ``runs.png``, ``run-live.png``, ``run-finished.png``, ``new-run.png``, ``compare.png``,
``plan.png``, ``chat.png`` into ``--out`` (default ``docs/ui``). Downloads nothing.
"""

from __future__ import annotations

import argparse
import json
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

RUN_TIMEOUT = 600


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


def submit_run(driver: Any, url: str, plugin: str, fields: dict[str, Any]) -> str:
    """Fill and submit the new-run form; return the run page's URL."""
    open_new_run(driver, url, plugin)
    fill(driver, fields)
    by_css(driver, "button#submit").click()
    page = f"{url}/runs/{fields['output']}"
    wait(driver, lambda d: d.current_url == page, 60, f"submit did not open {page}")
    return page


def until_status(driver: Any, *statuses: str, timeout: float = RUN_TIMEOUT) -> None:
    wait(driver, lambda d: text(d, "#run-status") in statuses, timeout, f"never {statuses}")


def shoot(driver: Any, out: Path, name: str) -> None:
    """Save the whole page (its full height, at the window's width) as ``out/name.png``."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, max(600, min(int(height) + 120, 2400)))
    time.sleep(0.3)  # let the layout settle at the new size before the capture
    driver.save_screenshot(str(out / f"{name}.png"))
    driver.set_window_size(width, 900)
    print(f"wrote {out / name}.png")


def make_runs(driver: Any, url: str, runs: Path, work: Path, out: Path) -> list[str]:
    """Create the tiny runs (photographing the live and form pages on the way); return the two
    finished runs to compare."""
    model, data = tiny_inputs(work)
    cli_argv = [
        sys.executable, "-m", "ftx", "run", "--plugin", "fft", "--model", str(model),
        "--data", str(data["train"]), "--output", str(runs / "fft-tiny"),
        "--set", "train.max_steps=40", "--set", "train.logging_steps=1",
        "--set", "train.learning_rate=5e-3", "--set", f"data.eval={data['eval']}",
    ]  # fmt: skip
    cli = subprocess.Popen(cli_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    open_new_run(driver, url, "sft")
    fill(driver, run_form_fields(model, data, "sft-tiny"))
    fill(driver, {"method-layers": "last:1"})
    shoot(driver, out, "new-run")
    by_css(driver, "button#submit").click()
    wait(driver, lambda d: d.current_url.endswith("/runs/sft-tiny"), 60, "no run page")
    until_status(driver, "finished")
    shoot(driver, out, "run-finished")
    cli.wait(timeout=RUN_TIMEOUT)
    slow = run_form_fields(model, data, "qlora-live", **{"train-max_steps": 4000})
    submit_run(driver, url, "qlora", slow)
    wait(driver, lambda d: "/" in text(d, "#run-step") and text(d, "#run-step")[0] not in "0 ",
         RUN_TIMEOUT, "the live run never stepped")  # fmt: skip
    time.sleep(3)  # a few points of loss curve
    shoot(driver, out, "run-live")
    by_css(driver, "button#stop").click()
    until_status(driver, "interrupted", "failed")
    return ["sft-tiny", "fft-tiny"]


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


def take(url: str, runs: Path, out: Path, work: Path, create: bool) -> None:
    driver = chromium(width=1280, height=900)
    try:
        compared = make_runs(driver, url, runs, work, out) if create else existing_runs(runs)
        if not create:
            open_new_run(driver, url, "sft")
            shoot(driver, out, "new-run")
            if compared:
                driver.get(f"{url}/runs/{compared[0]}")
                shoot(driver, out, "run-finished")
        driver.get(f"{url}/runs")
        shoot(driver, out, "runs")
        query = "&".join(f"run={name}" for name in compared)
        driver.get(f"{url}/compare?{query}")
        shoot(driver, out, "compare")
        driver.get(f"{url}/plan?model={plan_model(work)}&gpu_mem=16GB&seq_len=1024&batch_size=4")
        wait(driver, lambda d: all_css(d, "#plan-bars .plan-bar"), 120, "no plan bars")
        shoot(driver, out, "plan")
        if compared:
            driver.get(f"{url}/runs/{compared[0]}/chat")
            by_css(driver, "textarea#chat-input").send_keys("reverse: blue apple green")
            by_css(driver, "button#chat-send").click()
            wait(driver, lambda d: all_css(d, "#chat-log .msg.assistant.done"), 300, "no answer")
            shoot(driver, out, "chat")
    finally:
        driver.quit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, help="an existing runs root (default: make tiny runs)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    args = parser.parse_args()
    missing = browser_missing()
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ftx-ui-shots-") as tmp:
        work = Path(tmp)
        runs = args.runs.resolve() if args.runs else work / "runs"
        runs.mkdir(exist_ok=True)
        with serve_ui(runs, log=work / "ui.log", stop=args.runs is None) as url:
            take(url, runs, args.out, work, create=args.runs is None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
