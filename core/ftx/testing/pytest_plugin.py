"""Opt-in pytest plugin: fixtures for testing ftx and ftx method plugins.

Enable with ``pytest_plugins = ["ftx.testing.pytest_plugin"]`` in ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ftx_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama with a ChatML tokenizer (pad == end-of-turn, like SmolLM2)."""
    from ftx.testing.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-chat") / "model")


@pytest.fixture(scope="session")
def ftx_tiny_base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama whose tokenizer has no chat template and no pad token."""
    from ftx.testing.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-base") / "model", chat_template=False)


@pytest.fixture(scope="session")
def ftx_tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"train": path, "eval": path}``: small Vicuna-format JSONL files."""
    from ftx.testing.tiny import write_tiny_dataset

    root = tmp_path_factory.mktemp("tiny-data")
    return {
        "train": write_tiny_dataset(root / "train.jsonl", rows=48, seed=0),
        "eval": write_tiny_dataset(root / "eval.jsonl", rows=6, seed=1),
    }


@pytest.fixture
def ftx_cli() -> Callable[..., object]:
    """Invoke the ``ftx`` CLI in-process: ``result = ftx_cli("plugins", "--json")``.

    Returns click's ``Result`` (``exit_code``, ``stdout``, ``stderr``, ``output``).
    """
    from click.testing import CliRunner

    from ftx.cli import cli

    def invoke(*args: str, **kwargs: object):
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, **kwargs)

    return invoke


@pytest.fixture
def ftx_manager() -> Callable[[str], object]:
    """``ftx_manager(name)``: a plugin manager with the core defaults and only plugin ``name``."""
    from ftx.plugins import get_plugin, manager_for

    return lambda name: manager_for(get_plugin(name))


@pytest.fixture
def ftx_signal_at_step(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``ftx_signal_at_step(3, signal.SIGTERM)``: deliver a real signal to this process right
    after training step 3 of the next in-process run (as a user's Ctrl-C or a scheduler would).
    ``monkeypatch.undo()`` stops it."""
    import os
    import signal

    from ftx.callbacks import StopOnSignal

    def arm(step: int, sig: int = signal.SIGINT) -> None:
        original = StopOnSignal.on_step_end

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step and self.signal_name is None:
                os.kill(os.getpid(), sig)
            return original(self, args, state, control, **kwargs)

        monkeypatch.setattr(StopOnSignal, "on_step_end", on_step_end)

    return arm
