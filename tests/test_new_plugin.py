"""`ftx new-plugin NAME [--kind objective]`: the scaffolded package, a method or an objective,
installs, is listed ok with its kind and passes its own tests.

The install goes into a throwaway virtual environment layered over this one (a ``.pth`` file adds
this environment's site-packages), so this environment is never modified.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import venv
from pathlib import Path

import pytest

from ftx.commands.new_plugin import scaffold

HEAVY = ("torch", "transformers", "peft", "trl", "bitsandbytes")


def assert_complete_package(out: Path, module: str) -> None:
    """The scaffold's files, each valid Python where it is Python, with no template left."""
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == [
        ".gitignore",
        "README.md",
        f"{module}/__init__.py",
        "pyproject.toml",
        "tests/conftest.py",
        "tests/test_conformance.py",
    ]
    for path in out.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    assert "$" not in "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert "pytest_plugins = [" in (out / "tests" / "conftest.py").read_text()
    module_text = (out / module / "__init__.py").read_text()
    assert not [h for h in HEAVY if f"import {h}" in module_text.split("def ", 1)[0]]


def test_scaffold_writes_a_complete_package(tmp_path):
    out = scaffold("my-method", tmp_path / "pkg")
    assert_complete_package(out, "ftx_my_method")
    pyproject = (out / "pyproject.toml").read_text()
    assert 'name = "ftx-my-method"' in pyproject
    assert 'dependencies = ["ftx-core>=0.1,<0.2"]' in pyproject
    assert '[project.entry-points."ftx.plugins"]\nmy-method = "ftx_my_method"' in pyproject
    module = (out / "ftx_my_method" / "__init__.py").read_text()
    assert "def select_trainable(" in module and "def method_options(" in module
    assert "check_plugin(PLUGIN, " in (out / "tests" / "test_conformance.py").read_text()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("9lives", "invalid plugin name"),
        ("Hello", "invalid plugin name"),
        ("my--method", "invalid plugin name"),
        ("hello!", "invalid plugin name"),
        ("class", "Python keyword"),
        ("qlora", "already installed"),
    ],
)
def test_bad_names_are_bad_input(ftx_cli, tmp_path, name, message):
    result = ftx_cli("new-plugin", name, "--dir", tmp_path / "out")
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "out").exists()


def test_existing_target_is_bad_input(ftx_cli, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    result = ftx_cli("new-plugin", "hello", "--dir", taken)
    assert result.exit_code == 2 and "not empty" in result.stderr
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    assert ftx_cli("new-plugin", "hello", "--dir", tmp_path / "file").exit_code == 2
    # An empty directory is fine.
    (tmp_path / "empty").mkdir()
    assert ftx_cli("new-plugin", "hello", "--dir", tmp_path / "empty").exit_code == 0
    assert (tmp_path / "empty" / "ftx_hello" / "__init__.py").is_file()


def overlay_venv(path: Path) -> Path:
    """A venv at ``path`` that also sees this interpreter's site-packages; return its python."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in dirs if os.path.isdir(d))
    (Path(purelib) / "_ftx_parent_env.pth").write_text(lines)
    return python


def run(cmd: list[object], cwd: Path | None = None, timeout: int = 300):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def install_scaffold(ftx_cli, tmp_path: Path, name: str, *args: str):
    """Scaffold plugin ``name`` (``args``: more ``ftx new-plugin`` flags), install it into an
    overlay venv; return ``(its python, the package, its entry in ftx plugins --json)``."""
    package = tmp_path / f"ftx-{name}"
    result = ftx_cli("new-plugin", name, *args, "--dir", package)
    assert result.exit_code == 0, result.output
    python = overlay_venv(tmp_path / "venv")
    run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", package])
    listed = json.loads(run([python, "-m", "ftx.cli", "plugins", "--json"]).stdout)
    entry = next(p for p in listed if p["name"] == name)
    assert entry["status"] == "ok" and entry["distribution"] == f"ftx-{name}"
    return python, package, entry


def test_scaffolded_plugin_installs_is_listed_and_passes_its_own_tests(ftx_cli, tmp_path):
    python, package, hello = install_scaffold(ftx_cli, tmp_path, "hello")
    assert hello["kind"] == "method"
    assert hello["hooks"] == ["method_options", "select_trainable"]

    tests = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=package)
    assert "3 passed" in tests.stdout, tests.stdout
    # This environment did not change: the plugin is not installed here.
    assert "hello" not in [p["name"] for p in json.loads(ftx_cli("plugins", "--json").stdout)]


def test_scaffold_an_objective_writes_a_complete_package(tmp_path):
    out = scaffold("my-objective", tmp_path / "pkg", kind="objective")
    assert_complete_package(out, "ftx_my_objective")
    pyproject = (out / "pyproject.toml").read_text()
    assert 'name = "ftx-my-objective"' in pyproject
    assert '[project.entry-points."ftx.objectives"]\nmy-objective = "ftx_my_objective"' in pyproject
    assert "ftx.plugins" not in pyproject and "--objective my-objective" in pyproject
    module = (out / "ftx_my_objective" / "__init__.py").read_text()
    for hook in ("objective_options", "objective_traits", "build_trainer"):
        assert f"def {hook}(" in module
    assert "from ftx.objectives.supervised import" in module  # reused, not copied
    test = (out / "tests" / "test_conformance.py").read_text()
    assert "check_plugin(OBJECTIVE, " in test and "methods=METHODS" in test


def test_new_plugin_kind_is_checked_and_names_are_unique_across_kinds(ftx_cli, tmp_path):
    result = ftx_cli("new-plugin", "hello", "--kind", "recipe", "--dir", tmp_path / "a")
    assert result.exit_code == 2 and "recipe" in result.output
    # an objective's name is taken for a method too, and the reverse
    taken = ftx_cli("new-plugin", "supervised", "--dir", tmp_path / "b")
    assert taken.exit_code == 2 and "already installed (from ftx-core)" in taken.stderr
    taken = ftx_cli("new-plugin", "qlora", "--kind", "objective", "--dir", tmp_path / "c")
    assert taken.exit_code == 2 and "already installed" in taken.stderr
    assert not any((tmp_path / d).exists() for d in "abc")


def test_scaffolded_objective_installs_is_listed_and_passes_its_own_tests(ftx_cli, tmp_path):
    python, package, smooth = install_scaffold(ftx_cli, tmp_path, "smooth", "--kind", "objective")
    assert smooth["kind"] == "objective"
    hooks = {"objective_options", "objective_traits", "build_trainer", "load_rows", "score_heldout"}
    assert hooks <= set(smooth["hooks"])

    # the kit under every method installed here (fft, sft, qlora, ia3): a run each
    tests = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=package, timeout=600)
    assert "3 passed" in tests.stdout, tests.stdout
    assert "smooth" not in [p["name"] for p in json.loads(ftx_cli("plugins", "--json").stdout)]
