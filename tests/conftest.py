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
