"""``ftx new-plugin NAME [--kind method|objective]``: scaffold a plugin package that passes the
conformance kit.

The package written (default directory ``./ftx-NAME``)::

    pyproject.toml            distribution ftx-NAME, entry point NAME = "ftx_NAME" (group
                              ftx.plugins for a method, ftx.objectives for an objective)
    ftx_NAME/__init__.py      a method: method_options + select_trainable (trains the last MLP
                              weights); an objective: objective_options, objective_traits and
                              build_trainer (supervised loss, label-smoothed), the data and
                              scoring hooks reused from ftx.objectives.supervised
    tests/conftest.py         enables ftx's pytest plugin
    tests/test_conformance.py runs ftx.testing.conformance.check_plugin (an objective: under
                              every installed method), and checks of the plugin's own
    README.md  .gitignore

It installs with ``pip install -e``, shows as ``ok`` in ``ftx plugins`` and passes its own tests
untouched. The templates are package data under ``ftx/templates/plugin``. Importing this module
imports neither torch nor transformers.
"""

from __future__ import annotations

import keyword
import re
from importlib import metadata, resources
from pathlib import Path
from string import Template

import click

from ftx import ENTRY_POINT_GROUPS, __version__
from ftx.errors import BadInput

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
KINDS = ("method", "objective")

# per kind: template file -> path in the generated package ({module} is the import package)
TEMPLATE_FILES = {
    "method": {
        "pyproject.toml.tmpl": "pyproject.toml",
        "README.md.tmpl": "README.md",
        "gitignore.tmpl": ".gitignore",
        "plugin.py.tmpl": "{module}/__init__.py",
        "conftest.py.tmpl": "tests/conftest.py",
        "test_conformance.py.tmpl": "tests/test_conformance.py",
    },
    "objective": {
        "pyproject.toml.tmpl": "pyproject.toml",
        "objective_README.md.tmpl": "README.md",
        "gitignore.tmpl": ".gitignore",
        "objective.py.tmpl": "{module}/__init__.py",
        "conftest.py.tmpl": "tests/conftest.py",
        "objective_test_conformance.py.tmpl": "tests/test_conformance.py",
    },
}
# per kind: the values of the pyproject template that differ
KIND_VALUES = {
    "method": {
        "group": ENTRY_POINT_GROUPS["method"],
        "flag": "--plugin",
        "description": "ftx method plugin '{name}': trains only the MLP weights of the last "
        "decoder blocks.",
    },
    "objective": {
        "group": ENTRY_POINT_GROUPS["objective"],
        "flag": "--objective",
        "description": "ftx objective plugin '{name}': supervised next-token loss with label "
        "smoothing.",
    },
}


def plugin_names(name: str) -> dict[str, str]:
    """Validate a plugin name and derive the names used in the package.

    Returns ``{"name", "dist", "module"}`` (e.g. ``my-method``, ``ftx-my-method``,
    ``ftx_my_method``). Raises BadInput unless the name is lowercase letters and digits, words
    joined by single ``-`` or ``_``, starting with a letter: after ``-`` → ``_`` it must be a
    Python identifier and not a keyword.
    """
    ident = name.replace("-", "_")
    if keyword.iskeyword(ident):
        raise BadInput(
            f"invalid plugin name {name!r}: '{ident}' is a Python keyword",
            hint="for example: ftx new-plugin my-method",
        )
    if not NAME_PATTERN.match(name) or not ident.isidentifier():
        raise BadInput(
            f"invalid plugin name {name!r}: use lowercase letters and digits, words joined by "
            "'-' or '_', starting with a letter",
            hint="for example: ftx new-plugin my-method",
        )
    return {"name": name, "dist": f"ftx-{name}", "module": f"ftx_{ident}"}


def _installed_plugin(name: str) -> str | None:
    """The distribution that already provides plugin ``name``, method or objective (names are
    unique across kinds), if any; no plugin is imported."""
    for group in ENTRY_POINT_GROUPS.values():
        for ep in metadata.entry_points(group=group):
            if ep.name == name:
                dist = getattr(ep, "dist", None)
                return dist.metadata["Name"] if dist is not None else "?"
    return None


def _core_requirements() -> tuple[str, str]:
    """``ftx-core>=X.Y,<X.(Y+1)`` for the running core, and the same with the testing extra."""
    major, minor = (int(part) for part in __version__.split(".")[:2])
    bounds = f">={major}.{minor},<{major}.{minor + 1}"
    return f"ftx-core{bounds}", f"ftx-core[testing]{bounds}"


def render(name: str, kind: str = "method") -> dict[str, str]:
    """The generated package as ``{relative path: text}`` for plugin ``name`` (validated) of
    ``kind`` (``method`` or ``objective``)."""
    if kind not in KINDS:
        raise BadInput(f"unknown plugin kind {kind!r}: use {' or '.join(KINDS)}")
    names = plugin_names(name)
    core, core_testing = _core_requirements()
    values = {
        **names,
        "core_requirement": core,
        "core_testing_requirement": core_testing,
        **{k: v.format(name=name) for k, v in KIND_VALUES[kind].items()},
    }
    root = resources.files("ftx") / "templates" / "plugin"
    files = {}
    for template, target in TEMPLATE_FILES[kind].items():
        text = Template((root / template).read_text(encoding="utf-8")).substitute(values)
        files[target.format(module=names["module"])] = text
    return files


def scaffold(name: str, target: str | Path | None = None, kind: str = "method") -> Path:
    """Write the package for plugin ``name`` of ``kind`` (``method``, the default, or
    ``objective``) into ``target`` (default ``./ftx-NAME``).

    Raises BadInput, before writing anything, for an invalid name, a name another installed
    distribution already uses for a plugin, or a ``target`` that is a file or a non-empty
    directory. The package appears complete or not at all (written to a temporary sibling,
    then renamed).
    """
    from ftx.artifacts import atomic_dir

    names = plugin_names(name)
    owner = _installed_plugin(name)
    if owner is not None:
        raise BadInput(
            f"a plugin named {name!r} is already installed (from {owner}); two plugins with one "
            "name cannot be told apart",
            hint="choose another name",
        )
    out = Path(target) if target is not None else Path(names["dist"])
    if out.exists() and not out.is_dir():
        raise BadInput(f"--dir {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise BadInput(
            f"directory {out} already exists and is not empty",
            hint="choose another --dir, or remove it first",
        )
    files = render(name, kind)
    with atomic_dir(out) as tmp:
        tmp.chmod(0o777 & ~_umask())  # a temporary directory starts private (0700)
        for rel, text in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return out


def _umask() -> int:
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@click.command("new-plugin")
@click.argument("name")
@click.option(
    "--dir",
    "target",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the package (default: ./ftx-NAME); must not exist or be empty.",
)
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    default="method",
    show_default=True,
    help="method: what trains (--plugin); objective: what a run learns from (--objective).",
)
def new_plugin(name: str, target: Path | None, kind: str) -> None:
    """Scaffold a plugin package NAME (a method, or with --kind objective an objective) that
    passes ftx's conformance kit."""
    out = scaffold(name, target, kind)
    names = plugin_names(name)
    click.echo(f"created {out}/ — {kind} plugin '{name}', distribution {names['dist']}:")
    for rel in sorted(render(name, kind)):
        click.echo(f"  {rel}")
    click.echo(
        "next:\n"
        f"  pip install -e {out}       # then `ftx plugins` lists '{name}' as ok\n"
        f"  cd {out} && pytest        # the conformance kit and the {kind}'s own tests"
    )
