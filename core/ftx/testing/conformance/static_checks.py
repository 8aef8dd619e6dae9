"""Checks that need no training: discovery, lazy import, options, the CLI listing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from ftx.testing.conformance.report import HEAVY_MODULES, ConformanceReport

_SUBPROCESS_TIMEOUT_S = 120


_LAZY_PROBE = """
import json, sys
from importlib import metadata
name, heavy = sys.argv[1], sys.argv[2].split(",")
found = [ep for ep in metadata.entry_points(group="ftx.plugins") if ep.name == name]
if not found:
    print(json.dumps({"error": "no entry point named %r in group ftx.plugins" % name}))
    raise SystemExit(0)
found[0].load()
print(json.dumps({"value": found[0].value, "heavy": [m for m in heavy if m in sys.modules]}))
"""


def check_lazy_import(name: str) -> None:
    out = _python(["-c", _LAZY_PROBE, name, ",".join(HEAVY_MODULES)], "the entry-point probe")
    result = json.loads(out.strip().splitlines()[-1])
    assert "error" not in result, result.get("error")
    heavy = result["heavy"]
    assert not heavy, (
        f"loading the entry point '{result['value']}' imported {', '.join(heavy)}; "
        "import heavy libraries inside the hook bodies, not at module level"
    )


def check_discovery(name: str, report: ConformanceReport) -> Any:
    from ftx.plugins import discover

    by_name = {p.name: p for p in discover()}
    assert name in by_name, (
        f"not installed: no entry point '{name}' in group 'ftx.plugins' "
        f"(found: {', '.join(sorted(by_name)) or 'none'}); `pip install -e .` the plugin"
    )
    info = by_name[name]
    assert info.ok, f"`ftx plugins` reports it broken: {info.status}"
    report.distribution, report.version = info.distribution, info.version
    report.hooks_implemented = list(info.hooks)
    return info


def check_options(info: Any, report: ConformanceReport) -> None:
    from ftx.context import DeviceInfo
    from ftx.options import Option, resolve_options
    from ftx.plugins import call_first, manager_for

    pm = manager_for(info, defaults=False)
    declared, _ = call_first(pm, "method_options")
    declared = [] if declared is None else declared
    assert isinstance(declared, list), (
        f"method_options must return a list of ftx.options.Option, got {type(declared).__name__}"
    )
    wrong = [o for o in declared if not isinstance(o, Option)]
    assert not wrong, f"method_options returned non-Option items: {wrong!r}"
    names = [o.name for o in declared]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"method_options declares {', '.join(dupes)} more than once"
    # Feeding every default back as if the user had typed it checks type and choices.
    report.options = resolve_options(
        declared, {o.name: o.default for o in declared}, plugin=info.name
    )
    cpu = DeviceInfo(kind="cpu", bf16=False, count=0, name="CPU")
    defaults, _ = call_first(pm, "train_defaults", device=cpu)
    assert defaults is None or (
        isinstance(defaults, dict) and all(isinstance(k, str) for k in defaults)
    ), f"train_defaults must return None or a dict of argument names, got {defaults!r}"


def check_cli(name: str) -> None:
    from click.testing import CliRunner

    from ftx.cli import cli

    listed = json.loads(_python(["-m", "ftx.cli", "plugins", "--json"], "`ftx plugins --json`"))
    entry = next((p for p in listed if p.get("name") == name), None)
    assert entry is not None, f"`ftx plugins --json` does not list it: {listed}"
    assert entry.get("status") == "ok", f"`ftx plugins --json` status: {entry.get('status')}"
    shown = CliRunner().invoke(cli, ["plugins", "show", name, "--json"])
    assert shown.exit_code == 0, f"`ftx plugins show {name}` failed: {shown.output}"
    assert "options" in json.loads(shown.stdout), "`ftx plugins show --json` has no options"


def _python(args: list[str], what: str) -> str:
    """Run this interpreter with ``args`` in a fresh process; return its stdout.

    Raises AssertionError naming ``what`` with the end of stderr when the process fails.
    """
    proc = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=_SUBPROCESS_TIMEOUT_S,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise AssertionError(f"{what} exited with code {proc.returncode}:\n{tail}")
    return proc.stdout
