"""Slow tier: ``examples/notebook.ipynb`` executed top to bottom in a real Jupyter kernel on the
CPU, with small budgets (the notebook reads them from ``FTX_NB_*``), on the real SmolLM2."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "notebook.ipynb"


def test_the_example_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[dev]' (nbformat)")
    nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[dev]' (nbclient)")
    if importlib.util.find_spec("ipykernel") is None:  # not imported here: the kernel needs it
        pytest.skip("pip install -e '.[dev]' (ipykernel)")
    steps = os.environ.get("FTX_NB_STEPS", "2")
    for key, value in {
        "FTX_NB_STEPS": steps,
        "FTX_NB_EVAL_ROWS": "2",
        "FTX_NB_FORGETTING": "0",  # measured in the demo compare (tests/test_slow_demo.py)
        "FTX_NB_INSTALL": "0",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FTX_NB_OUT", str(tmp_path / "runs"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the API needs no offline variable
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error

    for plugin in ("fft", "sft", "qlora"):
        summary = json.loads((tmp_path / "runs" / "compare" / plugin / "summary.json").read_text())
        assert summary["status"] == "finished" and summary["steps"] == int(steps)
        assert summary["eval_after"]["n"] == 2
    assert (tmp_path / "runs" / "compare" / "compare.md").is_file()
    outputs = {i: cell.get("outputs", []) for i, cell in enumerate(nb.cells)}
    text = "\n".join(
        str(o.get("text", "")) + str((o.get("data") or {}).get("text/plain", ""))
        for cells in outputs.values()
        for o in cells
    )
    assert "step" in text and "loss" in text  # progress shown in the cells
    run_cell = next(c for c in nb.cells if c.source.startswith("qlora = ftx.run("))
    shown = [
        str(o.get("text", "")) + str((o.get("data") or {}).get("text/plain", ""))
        for o in run_cell.outputs
    ]
    bars = [t for t in shown if "█" in t or "░" in t]
    assert len(bars) == 1, shown  # one display, updated in place at every step
    assert f"] {steps}/{steps}  loss " in bars[0]
    assert not any("  step " in t for t in shown)  # no step lines printed beside it
    assert "ftx compare" in text  # the compare table and the children's output, in the cell
    chat = next(c for c in nb.cells if "best.chat(" in c.source)
    reply = chat.outputs[-1]["data"]["text/plain"]
    assert reply.startswith("'") or reply.startswith('"')  # a string came back
    assert list((tmp_path / "runs" / "compare").glob("*/export-full-bf16/config.json"))
