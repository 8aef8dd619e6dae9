"""ftx.openmp: OpenMP's idle threads spin on a free machine and sleep on a shared one."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from ftx import openmp

CLEAN = {
    k: v
    for k, v in __import__("os").environ.items()
    if k not in ("OMP_WAIT_POLICY", "HF_HUB_OFFLINE")
}


def probe(code: str, env: dict[str, str] | None = None) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", code], env=env or CLEAN, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


@pytest.fixture
def busy_neighbour():
    """A process that keeps one core busy for the test's duration."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.3)
    yield hog
    hog.kill()
    hog.wait()


def fake_loadavg(monkeypatch, running: list[int]):
    """Make /proc/loadavg report ``running`` runnable tasks, one value per reading."""
    import builtins
    import io

    values = iter(running)
    real_open = builtins.open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/loadavg":
            return io.StringIO(f"0.50 0.40 0.30 {next(values)}/300 4242\n")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)


def test_idle_machine_keeps_the_openmp_default(monkeypatch):
    fake_loadavg(monkeypatch, [1, 2, 1])  # only this process (a passing task is ignored)
    env: dict[str, str] = {}
    assert "OpenMP default" in openmp.choose_wait_policy(env)
    assert "OMP_WAIT_POLICY" not in env


def test_busy_machine_gets_passive(monkeypatch):
    fake_loadavg(monkeypatch, [3, 2, 3])  # at least one other task all along
    env: dict[str, str] = {}
    decision = openmp.choose_wait_policy(env)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and "1 other runnable" in decision
    assert decision == openmp.DECISION


def test_the_users_setting_wins(monkeypatch):
    fake_loadavg(monkeypatch, [5, 5, 5])
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert openmp.choose_wait_policy(env) == "ACTIVE (set by the user)"
    assert env == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_a_parent_ftx_processs_choice_is_made_again(monkeypatch):
    """ftx compare saw a busy machine at its start and chose PASSIVE; the run it starts next
    finds the machine idle (the parent only waits) and keeps OpenMP's default, instead of
    inheriting PASSIVE as if the user had set it."""
    fake_loadavg(monkeypatch, [2, 2, 2, 1, 1, 1])
    parent: dict[str, str] = {}
    assert openmp.choose_wait_policy(parent).startswith("PASSIVE (1 other")
    child = dict(parent)  # what a subprocess inherits
    assert "OpenMP default" in openmp.choose_wait_policy(child)
    assert "OMP_WAIT_POLICY" not in child and openmp.CHOSEN_BY_FTX not in child


def test_a_users_setting_beside_a_stale_marker_still_wins(monkeypatch):
    fake_loadavg(monkeypatch, [1, 1, 1])
    env = {"OMP_WAIT_POLICY": "ACTIVE", openmp.CHOSEN_BY_FTX: "PASSIVE"}
    assert openmp.choose_wait_policy(env) == "ACTIVE (set by the user)"
    assert env == {"OMP_WAIT_POLICY": "ACTIVE"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/loadavg is Linux's")
def test_a_competing_process_is_seen_for_real(busy_neighbour):
    """With a busy process beside it, the ``ftx`` command's process settings choose PASSIVE."""
    code = (
        "import os; from ftx.process_env import configure_command_process\n"
        "configure_command_process(); print(os.environ.get('OMP_WAIT_POLICY'))"
    )
    assert probe(code) == ["PASSIVE"]


def test_importing_ftx_leaves_the_environment_alone(busy_neighbour):
    """``import ftx`` (a notebook's) sets neither variable and loads no torch, even with a busy
    process beside it; the command's entry point sets both, keeping what the user set."""
    code = (
        "import os, sys, ftx\n"
        "print(os.environ.get('HF_HUB_OFFLINE'), os.environ.get('OMP_WAIT_POLICY'), "
        "'torch' in sys.modules)"
    )
    assert probe(code) == ["None", "None", "False"]
    code = (
        "import os, sys\nfrom ftx.process_env import configure_command_process\n"
        "configure_command_process()\n"
        "print(os.environ.get('HF_HUB_OFFLINE'), os.environ.get('OMP_WAIT_POLICY'))"
    )
    assert probe(code) == ["1", "PASSIVE"]
    user = {**CLEAN, "HF_HUB_OFFLINE": "0", "OMP_WAIT_POLICY": "ACTIVE"}
    assert probe(code, user) == ["0", "ACTIVE"]


def test_the_api_sets_the_policy_only_before_torch_loads():
    code = (
        "import os, sys\nfrom ftx import openmp, process_env\n"
        "{before}\nprocess_env.choose_wait_policy_if_possible()\n"
        "print(repr(os.environ.get('OMP_WAIT_POLICY')), '|', openmp.DECISION)"
    )
    late = " ".join(probe(code.format(before="import torch")))
    assert late.startswith("None | OpenMP default (torch was loaded before ftx.run"), late
    early = " ".join(probe(code.format(before="")))
    assert "torch was loaded" not in early and early.split(" | ")[1].split()[0] in (
        "PASSIVE",
        "OpenMP",
    ), early
