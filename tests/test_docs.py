"""Every hookspec is documented in CONTRIBUTING.md with its exact signature, and tested."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pluggy

from ftx import hookspecs

ROOT = Path(__file__).resolve().parents[1]


def spec_functions():
    marker = f"{hookspecs.hookspec.project_name}_spec"
    return {
        name: fn for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, marker)
    }


def test_all_hooks_are_specs():
    names = set(spec_functions())
    assert {"load_model", "select_trainable", "build_trainer", "export"} <= names
    assert isinstance(hookspecs.hookspec, pluggy.HookspecMarker)


def test_contributing_documents_every_hook_signature():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    for name, fn in spec_functions().items():
        params = ", ".join(inspect.signature(fn).parameters)
        assert f"### `{name}`" in text, f"no section for hook {name}"
        assert f"def {name}({params})" in text, f"signature of {name} differs from the hookspec"


def test_every_hook_has_a_test():
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    for name in spec_functions():
        assert re.search(rf"hook:\s*{name}\b", tests), f"no test marked 'hook: {name}'"
