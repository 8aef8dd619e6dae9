"""The runner, the plugin loader and the config modules name no method and no objective in
their code paths (help texts and examples may): what they need to know about a plugin they ask
through the contract (issue 18)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core" / "ftx"
NEUTRAL = [*sorted((CORE / "runner").glob("*.py")), CORE / "plugins.py"]
NEUTRAL += sorted((CORE / "config").glob("*.py"))
PLUGIN_NAMES = {"fft", "sft", "qlora", "ia3", "supervised", "dpo", "orpo", "simpo", "kto"}


def decisions_on_plugin_names(path: Path) -> list[str]:
    """String constants naming a plugin where code decides with them: compared, used as a key
    or an index, or passed as an argument (not messages, docstrings or comments)."""
    tree = ast.parse(path.read_text())
    found = []

    def named(node: ast.AST) -> bool:
        return isinstance(node, ast.Constant) and node.value in PLUGIN_NAMES

    for node in ast.walk(tree):
        suspects: list[ast.AST] = []
        if isinstance(node, ast.Compare):
            suspects = [node.left, *node.comparators]
            for comp in node.comparators:
                if isinstance(comp, ast.Tuple | ast.List | ast.Set):
                    suspects += comp.elts
        elif isinstance(node, ast.Subscript):
            suspects = [node.slice]
        elif isinstance(node, ast.Dict):
            suspects = [k for k in node.keys if k is not None]
        elif isinstance(node, ast.Call):
            suspects = [*node.args, *(k.value for k in node.keywords)]
        found += [f"{path.name}:{s.lineno}: {s.value!r}" for s in suspects if named(s)]
    return found


def test_runner_loader_and_config_decide_nothing_by_plugin_name():
    found = [hit for path in NEUTRAL for hit in decisions_on_plugin_names(path)]
    assert not found, f"code paths that name a plugin: {found}"


def test_the_check_catches_a_decision_by_name(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('if run.plugin != "qlora":\n    advice.append("--plugin qlora")\n')
    assert decisions_on_plugin_names(sample) == ["sample.py:1: 'qlora'"]
