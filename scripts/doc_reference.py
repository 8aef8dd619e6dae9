"""Render the reference sections of the docs from the code, so the two cannot drift.

* CONTRIBUTING.md, between ``<!-- hooks:begin -->`` and ``<!-- hooks:end -->``: what a hook
  gets as ``run`` (:class:`ftx.context.RunContext`) and one section per hookspec of
  :mod:`ftx.hookspecs` (heading, signature, calling rule, types, docstring), per-run hooks in
  call order first, then the declarative ones;
* README.md, between ``<!-- config:begin -->`` and ``<!-- config:end -->``: every key of the
  config's section tables (``ftx.config.*_FIELDS``) with its type, default and help, and the
  ``train`` section's defaults, aliases and reserved keys.

Usage::

    python scripts/doc_reference.py           # exit 1 naming each stale file
    python scripts/doc_reference.py --write   # rewrite the sections in place

``tests/test_docs.py`` fails while a section differs from what this script renders. Imports
nothing heavy (no torch).
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WRITE_COMMAND = "python scripts/doc_reference.py --write"


# --- docstrings to Markdown --------------------------------------------------------------------


def inline(text: str) -> str:
    """reST inline markup to Markdown: ``x`` and :role:`~x` become `x`."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    return re.sub(r"``(.+?)``", r"`\1`", text)


def markdown(doc: str | None) -> str:
    """A docstring as Markdown: inline markup converted, ``Something::`` blocks fenced."""
    lines = inspect.cleandoc(doc or "").splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.rstrip().endswith("::"):
            out.append(inline(line))
            continue
        out.append(inline(line.rstrip()[:-1]))
        block = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
            block.append(lines[i])
            i += 1
        out += ["", "```python", textwrap.dedent("\n".join(block)).strip("\n"), "```", ""]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def one_paragraph(doc: str | None) -> str:
    return " ".join(markdown(doc).split())


# --- hooks -------------------------------------------------------------------------------------


def hook_specs() -> dict[str, Callable[..., Any]]:
    """The hookspec functions of :mod:`ftx.hookspecs`, in source order."""
    from ftx import hookspecs

    marker = f"{hookspecs.hookspec.project_name}_spec"
    return {n: f for n, f in vars(hookspecs).items() if callable(f) and hasattr(f, marker)}


def spec_options(fn: Callable[..., Any]) -> dict[str, Any]:
    from ftx import hookspecs

    return getattr(fn, f"{hookspecs.hookspec.project_name}_spec")


def per_run(fn: Callable[..., Any]) -> bool:
    """Per-run hooks are the ones that get ``run``; the others are declarative."""
    return "run" in inspect.signature(fn).parameters


def plain_signature(name: str, fn: Callable[..., Any]) -> str:
    """``def name(a, b)``: the spec's parameter names, without annotations."""
    return f"def {name}({', '.join(inspect.signature(fn).parameters)})"


def core_answers(name: str) -> bool:
    from ftx.plugins import manager_for

    hook = getattr(manager_for(None).hook, name)
    return any(impl.plugin_name == "core" for impl in hook.get_hookimpls())


def render_hook(name: str, fn: Callable[..., Any]) -> str:
    sig = inspect.signature(fn)
    types = ", ".join(f"`{p}: {a.annotation}`" for p, a in sig.parameters.items()) or "none"
    if spec_options(fn)["firstresult"]:
        called = (
            "*firstresult*: implementations are tried in turn, the core default last, and the "
            "first that returns something other than `None` answers."
        )
    else:
        called = "*every implementation is called*, the core's first, the selected plugin's last."
    default = "yes (`trylast`)" if core_answers(name) else "none"
    return "\n".join(
        [
            f"### `{name}`",
            "",
            "```python",
            plain_signature(name, fn),
            "```",
            "",
            f"- **Called:** {called}",
            f"- **Core default:** {default}.",
            f"- **Types:** arguments {types}; returns `{sig.return_annotation}`.",
            "",
            markdown(fn.__doc__),
        ]
    )


def render_run_context() -> str:
    from ftx.context import RunContext

    members = []
    for attr, member in vars(RunContext).items():
        if attr.startswith("_"):
            continue
        if isinstance(member, property):
            members.append(f"- `run.{attr}`: {one_paragraph(member.__doc__)}")
        elif callable(member):
            params = list(inspect.signature(member).parameters.values())[1:]
            args = ", ".join(str(p).split(":")[0] for p in params)
            members.append(f"- `run.{attr}({args})`: {one_paragraph(member.__doc__)}")
    return "\n".join(
        [
            "### `run`: the `RunContext` every per-run hook gets",
            "",
            "`run` is an `ftx.context.RunContext` (`core/ftx/context.py`).",
            "",
            markdown(RunContext.__doc__),
            "",
            *members,
        ]
    )


def render_hooks() -> str:
    specs = hook_specs()
    order = [n for n, f in specs.items() if per_run(f)]
    cheap = [n for n, f in specs.items() if not per_run(f)]
    intro = [
        "<!-- Generated from core/ftx/hookspecs.py and core/ftx/context.py by "
        f"`{WRITE_COMMAND}`: edit the docstrings, not this text. -->",
        "",
        f"{len(specs)} hooks. Per-run hooks, in call order: "
        + " → ".join(f"`{n}`" for n in order[:-1])
        + f" → (`trainer.train()`) → `{order[-1]}`.",
        "Declarative hooks (cheap: no torch, no weights): "
        + ", ".join(f"`{n}`" for n in cheap)
        + ".",
        "Each signature below is the hookspec's, exactly; an implementation accepts any subset "
        "of its arguments.",
    ]
    sections = [render_run_context()]
    sections += [render_hook(n, specs[n]) for n in order + cheap]
    return "\n".join(intro) + "\n\n" + "\n\n".join(sections)


# --- configuration -----------------------------------------------------------------------------


def config_tables() -> dict[str, dict[str, tuple[str, Any, str]]]:
    """``{section: table}`` for every ``*_FIELDS`` table of :mod:`ftx.config`, in section order."""
    from ftx import config

    tables = {
        name.removesuffix("_FIELDS").lower(): table
        for name, table in vars(config).items()
        if name.endswith("_FIELDS") and isinstance(table, dict)
    }
    rank = {s: i for i, s in enumerate(config.SECTIONS)}
    return dict(sorted(tables.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def yaml_value(v: Any) -> str:
    """A default as it is written in YAML: ``null``, ``true``, ``auto``, ``512``."""
    if v is None:
        return "null"
    return str(v).lower() if isinstance(v, bool) else str(v)


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def type_name(t: str) -> str:
    return f"{t[:-1]} or null" if t.endswith("?") else t


def render_config() -> str:
    from ftx import config

    parts = [
        "<!-- Generated from core/ftx/config.py by "
        f"`{WRITE_COMMAND}`: edit the help strings there, not this text. -->",
    ]
    for section, table in config_tables().items():
        rows = [
            f"| `{section}.{key}` | {type_name(t)} | `{yaml_value(d)}` | {cell(inline(help_))} |"
            for key, (t, d, help_) in table.items()
        ]
        parts += [
            "",
            f"**`{section}`**",
            "",
            "| key | type | default | meaning |",
            "|---|---|---|---|",
            *rows,
        ]
    defaults = ", ".join(f"`{k}: {yaml_value(v)}`" for k, v in config.CORE_TRAIN_DEFAULTS.items())
    aliases = ", ".join(f"`{k}` → `{s}.{t}`" for k, (s, t) in config.TRAIN_ALIASES.items())
    owned = "; ".join(f"`{k}` ({why})" for k, why in config.TRAIN_OWNED.items())
    parts += [
        "",
        "**`train`**: any field of the installed TRL's `SFTConfig` (TrainingArguments included), "
        "coerced to the field's type. ftx's defaults, which a plugin's `train_defaults` and then "
        f"your values override: {defaults}.",
        "",
        f"Older names accepted under `train:`: {aliases}.",
        "",
        f"Set by ftx, so an error under `train:`: {owned}.",
        "",
        "**`method`**: the selected plugin's options; `ftx plugins show NAME` lists them with "
        "types, defaults and help.",
    ]
    return "\n".join(parts)


# --- the marked sections -----------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """A generated section of ``path``: the text between ``<!-- name:begin -->`` and
    ``<!-- name:end -->``."""

    path: Path
    name: str
    render: Callable[[], str]

    @property
    def markers(self) -> tuple[str, str]:
        return f"<!-- {self.name}:begin -->", f"<!-- {self.name}:end -->"

    def span(self, text: str) -> tuple[int, int]:
        begin, end = self.markers
        if begin not in text or end not in text:
            raise SystemExit(f"{self.path}: markers {begin} / {end} not found")
        start = text.index(begin) + len(begin)
        return start, text.index(end, start)

    def current(self) -> str:
        text = self.path.read_text()
        start, stop = self.span(text)
        return text[start:stop].strip("\n")

    def write(self) -> None:
        text = self.path.read_text()
        start, stop = self.span(text)
        self.path.write_text(text[:start] + "\n" + self.render() + "\n" + text[stop:])


REFERENCES = {
    "hooks": Reference(ROOT / "CONTRIBUTING.md", "hooks", render_hooks),
    "config": Reference(ROOT / "README.md", "config", render_config),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the stale sections")
    args = parser.parse_args(argv)
    stale = [ref for ref in REFERENCES.values() if ref.current() != ref.render()]
    for ref in stale:
        if args.write:
            ref.write()
            print(f"rewrote the {ref.name} reference in {ref.path.relative_to(ROOT)}")
        else:
            print(f"{ref.path.relative_to(ROOT)}: the {ref.name} reference is stale")
    if stale and not args.write:
        print(f"fix: {WRITE_COMMAND}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
