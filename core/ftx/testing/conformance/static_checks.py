"""Checks that need no training: discovery, lazy import, options, an objective's traits and
arguments class, the CLI listing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from ftx import ENTRY_POINT_GROUPS
from ftx.testing.conformance.report import HEAVY_MODULES, ConformanceReport

_SUBPROCESS_TIMEOUT_S = 120


_LAZY_PROBE = """
import json, sys
from importlib import metadata
name, heavy, group = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
found = [ep for ep in metadata.entry_points(group=group) if ep.name == name]
if not found:
    print(json.dumps({"error": "no entry point named %r in group %s" % (name, group)}))
    raise SystemExit(0)
found[0].load()
print(json.dumps({"value": found[0].value, "heavy": [m for m in heavy if m in sys.modules]}))
"""


def check_lazy_import(name: str, kind: str = "method") -> None:
    probe = [_LAZY_PROBE, name, ",".join(HEAVY_MODULES), ENTRY_POINT_GROUPS[kind]]
    out = _python(["-c", *probe], "the entry-point probe")
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
    groups = " or ".join(f"'{g}'" for g in ENTRY_POINT_GROUPS.values())
    assert name in by_name, (
        f"not installed: no entry point '{name}' in group {groups} "
        f"(found: {', '.join(sorted(by_name)) or 'none'}); `pip install -e .` the plugin"
    )
    info = by_name[name]
    assert info.ok, f"`ftx plugins` reports it broken: {info.status}"
    report.kind = info.kind
    report.distribution, report.version = info.distribution, info.version
    report.hooks_implemented = list(info.hooks)
    return info


def installed(names: Any, kind: str, report: ConformanceReport) -> list[Any]:
    """The installed plugins of ``kind`` to pair with the checked plugin: ``"all"`` (every
    one that loads; those that do not are listed in ``report.skipped``) or the ``names``
    given, each of which must be installed, of that kind, and load."""
    from ftx.errors import BadInput
    from ftx.plugins import discover, get_plugin

    found = discover()
    if names == "all":
        for info in found:
            if info.kind == kind and not info.ok:
                report.skipped[f"{kind} {info.name}"] = f"does not load: {info.status}"
        chosen = [info for info in found if info.kind == kind and info.ok]
        assert chosen, f"no {kind} is installed to check it with"
        return chosen
    out = []
    for name in [names] if isinstance(names, str) else list(names):
        try:
            out.append(get_plugin(name, found, kind=kind))
        except BadInput as exc:
            raise AssertionError(f"cannot check it with {kind} '{name}': {exc}") from None
    assert out, f"an empty list of {kind}s to check it with"
    return out


def check_options(info: Any, report: ConformanceReport, objectives: list[str]) -> None:
    """``method_options``/``objective_options`` and ``train_defaults`` (asked for each of the
    ``objectives`` the plugin will run under)."""
    from ftx.context import DeviceInfo
    from ftx.options import resolve_options
    from ftx.plugins import call_first, manager_for

    objective = info.kind == "objective"
    if objective:
        pm = manager_for(None, objective=info, defaults=False)
    else:
        pm = manager_for(info, defaults=False)
    hook = "objective_options" if objective else "method_options"
    declared, _ = call_first(pm, hook)
    declared = _options(declared, hook)
    # Feeding every default back as if the user had typed it checks type and choices.
    report.options = resolve_options(
        declared,
        {o.name: o.default for o in declared},
        plugin=info.name,
        section="objective" if objective else "method",
    )
    cpu = DeviceInfo(kind="cpu", bf16=False, count=0, name="CPU")
    for name in objectives:
        defaults, _ = call_first(pm, "train_defaults", device=cpu, objective=name)
        assert defaults is None or (
            isinstance(defaults, dict) and all(isinstance(k, str) for k in defaults)
        ), f"train_defaults must return None or a dict of argument names, got {defaults!r}"


def _options(declared: Any, hook: str) -> list[Any]:
    from ftx.options import Option

    declared = [] if declared is None else declared
    assert isinstance(declared, list), (
        f"{hook} must return a list of ftx.options.Option, got {type(declared).__name__}"
    )
    wrong = [o for o in declared if not isinstance(o, Option)]
    assert not wrong, f"{hook} returned non-Option items: {wrong!r}"
    names = [o.name for o in declared]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"{hook} declares {', '.join(dupes)} more than once"
    return declared


REFERENCES = ("none", "policy")
"""``ObjectiveTraits.reference`` values the host knows."""


def check_traits(info: Any, report: ConformanceReport) -> Any:
    """``objective_traits`` answers with a well-formed :class:`ftx.context.ObjectiveTraits`."""
    from ftx.context import ObjectiveTraits
    from ftx.plugins import call_first, manager_for

    traits, _ = call_first(manager_for(None, objective=info, defaults=False), "objective_traits")
    assert isinstance(traits, ObjectiveTraits), (
        "objective_traits must return an ftx.context.ObjectiveTraits (every objective "
        f"answers), got {traits!r}"
    )
    metrics = traits.metrics
    assert isinstance(metrics, tuple) and metrics and all(isinstance(m, str) for m in metrics), (
        f"ObjectiveTraits.metrics must be a non-empty tuple of metric names, got {metrics!r}"
    )
    for name in ("sequences_per_row", "min_batch_size"):
        value = getattr(traits, name)
        assert isinstance(value, int) and value >= 1, (
            f"ObjectiveTraits.{name} must be an int >= 1, got {value!r}"
        )
    assert traits.reference in REFERENCES, (
        f"ObjectiveTraits.reference must be one of {', '.join(REFERENCES)}, got "
        f"{traits.reference!r}"
    )
    assert isinstance(traits.data, str) and traits.data, (
        f"ObjectiveTraits.data must name the rows it learns from, got {traits.data!r}"
    )
    report.traits = traits
    return traits


def check_arguments(info: Any, report: ConformanceReport) -> None:
    """``arguments_class`` gives ``None`` (plain TrainingArguments) or ``(a TrainingArguments
    subclass, fixed keyword arguments that are fields of it)``."""
    import dataclasses

    from transformers import TrainingArguments

    from ftx.plugins import call_first, manager_for

    answer, _ = call_first(manager_for(None, objective=info, defaults=False), "arguments_class")
    if answer is None:
        report.arguments_class = "transformers.TrainingArguments"
        return
    assert isinstance(answer, tuple) and len(answer) == 2, (
        f"arguments_class must return (arguments class, fixed keyword arguments), got {answer!r}"
    )
    cls, fixed = answer
    assert isinstance(cls, type) and issubclass(cls, TrainingArguments), (
        f"arguments_class: {cls!r} is not a subclass of transformers.TrainingArguments"
    )
    assert isinstance(fixed, dict), f"arguments_class: fixed arguments {fixed!r} are not a dict"
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(fixed) - fields)
    assert not unknown, (
        f"arguments_class: fixed arguments {', '.join(unknown)} are not fields of {cls.__name__}"
    )
    report.arguments_class = f"{cls.__module__}.{cls.__qualname__}"


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
