"""Shared test setup: the ftx pytest plugin, a private cache, and the `slow` tier switch."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["ftx.testing.pytest_plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run the slow tier (real SmolLM2)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow") or os.environ.get("FTX_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow tier: pass --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def llama7b_dir(tmp_path_factory: pytest.TempPathFactory):
    """A model directory holding only Llama-2-7B's ``config.json`` (enough for ``ftx plan``)."""
    from tests.model_configs import llama_7b

    folder = tmp_path_factory.mktemp("llama-7b")
    llama_7b().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_arch_model(tmp_path_factory: pytest.TempPathFactory):
    """``tiny_arch_model(architecture, tokenizer="byte-level")``: the path of a tiny random
    model of that architecture (a key of ``ftx.testing.tiny.ARCHITECTURES``) with the ChatML
    tokenizer, or with ``tokenizer="sentencepiece"`` a Llama 2-style one, built once per
    session."""
    from ftx.testing.tiny import make_tiny_model

    built: dict[tuple[str, str], object] = {}

    def build(architecture: str, tokenizer: str = "byte-level"):
        key = (architecture, tokenizer)
        if key not in built:
            root = tmp_path_factory.mktemp(f"tiny-{architecture}-{tokenizer}")
            built[key] = make_tiny_model(
                root / "model", architecture=architecture, tokenizer=tokenizer
            )
        return built[key]

    return build


DEMO_QLORA_STEPS = os.environ.get("FTX_SLOW_STEPS")
"""Unset: the demo's default budget (up to 3 epochs, the best checkpoint, early stopping);
``FTX_SLOW_STEPS=N`` trains N steps instead (a shorter tier)."""
DEMO_QLORA_HELD_OUT = 40


@pytest.fixture(scope="session")
def demo_qlora_run(tmp_path_factory: pytest.TempPathFactory):
    """Slow tier: one demo QLoRA run of the real SmolLM2 that several slow tests build on
    (``ftx run --plugin qlora`` with its default budget, evaluated during training on the
    ``DEMO_QLORA_HELD_OUT`` held-out rows it also scores before and after, the f16 GGUF written
    at the end by ``export.gguf``), trained once per session in its own process. Tests read it,
    export beside it or start runs from it (``--model RUN``); none changes its ``model/``."""
    import subprocess
    import sys

    run = tmp_path_factory.mktemp("demo-qlora") / "qlora"
    sets = [f"data.eval_limit={DEMO_QLORA_HELD_OUT}", "export.gguf=f16"]
    if DEMO_QLORA_STEPS:
        sets.append(f"train.max_steps={int(DEMO_QLORA_STEPS)}")
    done = subprocess.run(
        [sys.executable, "-m", "ftx.cli", "run", "--plugin", "qlora", "--output", str(run)]
        + [f"--set={s}" for s in sets],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return run
