"""Shared test setup: the ftx pytest plugin, a private cache, and the `slow` tier switch."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path

import pytest

pytest_plugins = ["ftx.testing.pytest_plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run the slow tier (real SmolLM2)")


def _share_the_cores_between_workers() -> None:
    """Under pytest-xdist (``make test`` runs two workers), each worker and the ``ftx``
    processes it starts get their share of the cores as ``OMP_NUM_THREADS``, unless the user
    set it: two workers with a thread per core each would make OpenMP's threads wait for each
    other's cores. Runs when this conftest is imported, before the worker imports torch."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers <= 1 or "OMP_NUM_THREADS" in os.environ:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    os.environ["OMP_NUM_THREADS"] = str(max(1, (cores or 1) // workers))


_share_the_cores_between_workers()


DEMO_GROUP = "smollm2_demo"
"""The group of the slow tier's demo compare and the tests built on it: the longest chain."""


def xdist_group_of(item: pytest.Item) -> str | None:
    """The pytest-xdist group an item must share a worker with (``--dist loadgroup``), so that
    an expensive fixture is built once: the slow tier's shared demo compare, the browser
    session, or the item's module when the module builds a module-scoped fixture it uses.
    None: the item may run on any worker."""
    if "demo_compare" in item.fixturenames:
        return DEMO_GROUP
    path = item.nodeid.split("::")[0]
    if path.startswith("tests/browser/"):
        return "browser"
    fixture_info = getattr(item, "_fixtureinfo", None)
    for definitions in (fixture_info.name2fixturedefs if fixture_info else {}).values():
        own = definitions[-1]
        if own.scope == "module" and getattr(own.func, "__module__", "").startswith("tests."):
            return path
    return None


def _groups_file(testrunuid: str) -> Path:
    """Where the workers leave ``{nodeid: group}`` for the controller's scheduler."""
    return Path(tempfile.gettempdir()) / f"ftx-xdist-groups-{testrunuid}.json"


def pytest_configure(config: pytest.Config) -> None:
    # The controller names the test run, so that it knows where its workers leave the groups.
    xdist = config.pluginmanager.hasplugin("xdist")
    if xdist and getattr(config.option, "numprocesses", None) and not config.option.testrunuid:
        config.option.testrunuid = uuid.uuid4().hex


def pytest_sessionfinish(session: pytest.Session) -> None:
    # The controller removes the groups file, also when the scheduler never read it.
    if not os.environ.get("PYTEST_XDIST_WORKER") and getattr(
        session.config.option, "testrunuid", None
    ):
        _groups_file(session.config.option.testrunuid).unlink(missing_ok=True)


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # optional: pytest-xdist may be absent
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadgroup`` with the groups of :func:`xdist_group_of`. pytest-xdist 3.8 marks a
    group by renaming the item's nodeid, which pytest 9 ignores (a nodeid is no longer a
    plain attribute): every test would be on its own, and the demo compare built on both
    workers. So each worker writes its items' groups to a file, and the scheduler reads them."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    groups_file = _groups_file(config.getoption("testrunuid"))

    class FileGroupScheduling(LoadScopeScheduling):
        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if "@" in nodeid:  # a pytest-xdist whose own renaming works again
                return nodeid.rsplit("@", 1)[-1]
            if self.groups is None:
                self.groups = json.loads(groups_file.read_text())
                groups_file.unlink(missing_ok=True)
            return self.groups.get(nodeid, nodeid)

    return FileGroupScheduling(config, log)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups from the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    groups = {}
    for item in items:
        group = xdist_group_of(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
            groups[item.nodeid] = group
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Longest first (the scheduler hands out work in this order, ``--no-loadscope-reorder``):
        # the demo compare and the tests built on it are the longest chain, then the other
        # slow tests; the fast tier's short tests fill the end.
        items.sort(
            key=lambda item: (
                0
                if groups.get(item.nodeid) == DEMO_GROUP
                else (1 if "slow" in item.keywords else 2)
            )
        )
        target = _groups_file(os.environ["PYTEST_XDIST_TESTRUNUID"])
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(groups))
        os.replace(partial, target)  # every worker writes the same groups
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


SLOW_STEPS = os.environ.get("FTX_SLOW_STEPS")
"""Unset: the slow tier's budgets (below); ``FTX_SLOW_STEPS=N`` trains every shared demo run N
steps instead (a shorter tier)."""
DEMO_COMPARE_STEPS = int(SLOW_STEPS or 60)
DEMO_HELD_OUT = 40


@pytest.fixture(scope="session")
def demo_compare(tmp_path_factory: pytest.TempPathFactory):
    """Slow tier: one ``ftx compare --plugins fft,sft,qlora`` of the real SmolLM2 on the demo
    task that several slow tests build on, run once per session in its own process. fft and
    sft train a fixed ``DEMO_COMPARE_STEPS`` without evaluation during training; qlora trains at
    ftx's default budget (up to 3 epochs, evaluated during training, the best checkpoint, early
    stopping) and writes the f16 GGUF at the end (``export.gguf``): it is also the shared demo
    run, ``demo_qlora_run``. Every run scores the same ``DEMO_HELD_OUT`` held-out rows before
    and after and measures forgetting (on by default in compare). Tests read the runs, export
    beside them or start runs from them (``--model RUN``); none changes a ``model/``."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("demo") / "compare"
    sets = [f"data.eval_limit={DEMO_HELD_OUT}", "qlora:export.gguf=f16"]
    for plugin in ("fft", "sft"):  # a fixed budget; evaluation is tested on the qlora run
        sets.append(f"{plugin}:train.max_steps={DEMO_COMPARE_STEPS}")
        sets.append(f"{plugin}:train.eval_strategy=no")
    if SLOW_STEPS:
        sets.append(f"qlora:train.max_steps={int(SLOW_STEPS)}")
    done = subprocess.run(
        [sys.executable, "-m", "ftx.cli", "compare", "--plugins", "fft,sft,qlora", "--output"]
        + [str(out)]
        + [f"--set={s}" for s in sets],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def demo_qlora_run(demo_compare):
    """The shared demo QLoRA run: ``demo_compare``'s qlora run (ftx's default budget unless
    ``FTX_SLOW_STEPS`` is set)."""
    return demo_compare / "qlora"


@pytest.fixture
def no_model_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make loading a model or tokenizer fail the test: bad input must be refused before."""
    import ftx.models

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the bad value was refused")

    monkeypatch.setattr(ftx.models, "resolve_model", no_model)
    monkeypatch.setattr(ftx.models, "load_tokenizer", no_model)
