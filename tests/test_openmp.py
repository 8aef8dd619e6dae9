"""ftx.openmp: OpenMP's idle threads spin on a free machine and sleep on a shared one."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from ftx import openmp


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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/loadavg is Linux's")
def test_a_competing_process_is_seen_for_real():
    """With a busy process beside it, a fresh ``import ftx`` chooses PASSIVE."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        code = "import os, ftx; print(os.environ.get('OMP_WAIT_POLICY'))"
        env = {k: v for k, v in __import__("os").environ.items() if k != "OMP_WAIT_POLICY"}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.stdout.strip() == "PASSIVE", out.stderr
    finally:
        hog.kill()
        hog.wait()
