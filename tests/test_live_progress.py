"""In a notebook the step lines update one display in place instead of filling the cell."""

from __future__ import annotations

import json

from ftx.live_progress import LiveLine, progress_bar


class FakeDisplay:
    """IPython's ``display`` with ``display_id=True``: returns a handle whose ``update``
    replaces the content; records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, content, raw, display_id):
        assert raw is True and display_id is True
        self.calls.append(("display", content["text/plain"]))
        return self

    def update(self, content, raw):
        assert raw is True
        self.calls.append(("update", content["text/plain"]))


def test_progress_bar_fills_with_the_steps():
    assert progress_bar(0, 60, "").startswith("[" + "░" * 24 + "] 0/60")
    assert progress_bar(30, 60, " x").startswith("[" + "█" * 12 + "░" * 12 + "] 30/60 x")
    assert progress_bar(60, 60, "") == "[" + "█" * 24 + "] 60/60"


def test_one_display_is_created_then_updated():
    fake = FakeDisplay()
    line = LiveLine(fake)
    for text in ("a", "b", "c"):
        line.show(text)
    assert fake.calls == [("display", "a"), ("update", "b"), ("update", "c")]


def test_a_run_through_the_api_updates_the_notebook_display(
    tmp_path, ftx_tiny_model, ftx_tiny_data, monkeypatch
):
    """``ftx.run`` in Jupyter: every step replaces the one progress display (at the end: the
    last step with the last logged loss); no step line is printed; metrics.jsonl is unchanged."""
    import ftx
    from ftx import api

    fake = FakeDisplay()
    printed: list[str] = []

    class NotebookConsole:
        live_progress = LiveLine(fake)

        def print(self, *parts, **kwargs):
            printed.append(" ".join(str(p) for p in parts))

    monkeypatch.setattr(api, "_console", NotebookConsole)
    result = ftx.run(
        "sft",
        model=ftx_tiny_model,
        data=ftx_tiny_data["train"],
        train={"max_steps": 3, "logging_steps": 1, "per_device_train_batch_size": 4},
        output=tmp_path / "run",
    )
    assert result.status == "finished"
    steps = [json.loads(x)["step"] for x in (tmp_path / "run" / "metrics.jsonl").open()]
    assert steps == [1, 2, 3]
    kinds = [kind for kind, _ in fake.calls]
    assert kinds[0] == "display" and set(kinds[1:]) == {"update"} and len(kinds) >= 3
    assert [text.split("]")[1].split()[0] for _, text in fake.calls][-1] == "3/3"
    assert fake.calls[-1][1].startswith("[" + "█" * 24 + "] 3/3  loss ")
    assert not any("step" in line and "loss" in line for line in printed)
