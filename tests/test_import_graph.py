"""The import graph keeps its direction: CLI -> run -> hooks/plugins; the contract, the data layer
and the estimate library import no CLI and no runner; no core module is long without a reason."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core" / "ftx"
PLUGIN_PACKAGES = [ROOT / "plugins" / n / f"ftx_{n}" for n in ("fft", "sft", "qlora")]
MAX_LINES = 400


def module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def imported(path: Path) -> set[str]:
    """Every ``ftx…`` module a file imports, at module level or inside functions."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n == "ftx" or n.startswith("ftx.")}


def graph() -> dict[str, set[str]]:
    edges = {}
    for path in CORE.rglob("*.py"):
        edges[module_name(path, CORE, "ftx")] = imported(path)
    for package in PLUGIN_PACKAGES:
        for path in package.rglob("*.py"):
            edges[module_name(path, package, package.name)] = imported(path)
    return edges


def under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in prefixes)


def test_lower_layers_import_no_cli_and_no_runner():
    lower = ("ftx.hookspecs", "ftx.context", "ftx.data", "ftx.estimates", "ftx.options")
    lower += ("ftx.errors", "ftx.ranks", "ftx.config", "ftx.plugins", "ftx.models")
    wrong = {
        module: sorted(t for t in targets if under(t, "ftx.cli", "ftx.commands", "ftx.runner"))
        for module, targets in graph().items()
        if under(module, *lower)
    }
    assert not {m: t for m, t in wrong.items() if t}


def test_the_runner_imports_no_cli_and_plugins_import_neither():
    edges = graph()
    for module, targets in edges.items():
        if under(module, "ftx.runner"):
            assert not [t for t in targets if under(t, "ftx.cli", "ftx.commands")], module
        if module.startswith("ftx_"):
            bad = [t for t in targets if under(t, "ftx.cli", "ftx.commands", "ftx.runner")]
            assert not bad, f"plugin module {module} imports {bad}"


def test_no_core_module_is_long_without_saying_why():
    long = []
    for path in CORE.rglob("*.py"):
        lines = path.read_text().splitlines()
        if len(lines) > MAX_LINES:
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            if "longer than" not in doc:
                long.append(f"{path.relative_to(ROOT)} ({len(lines)} lines)")
    assert not long, f"split these, or say in the docstring why they are longer than {MAX_LINES}"


def test_only_the_ui_command_imports_the_web_app():
    """``ftx.ui`` sits on top: it uses the core, nothing in the core (but ``ftx ui``) uses it."""
    users = sorted(
        module
        for module, targets in graph().items()
        if not under(module, "ftx.ui") and any(under(t, "ftx.ui") for t in targets)
    )
    assert users == ["ftx.commands.ui"]
