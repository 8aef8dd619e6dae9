"""``ftx compare --grid``: grid expressions, and the cells (one run each) they expand to.

A grid axis is ``[PLUGIN:]section.key=v1,v2,…``: the ``--set`` syntax (:func:`ftx.config.parse_set`,
so each value is typed as ``--set`` types it) with a comma list of values (commas inside
``[…]``, ``{…}`` or quotes belong to a value). An axis reaches the plugins a ``--set`` of the
same key would reach (:func:`ftx.config.plugins_for`): a ``method.KEY`` axis only the compared
plugins that declare ``KEY``; the others run at their own defaults, once, not once per value.

A :class:`Cell` is one run: a plugin, one value per axis that reaches it, and a seed index
(``--seeds N``). Its directory, ``OUT/<plugin>/<key=value,…>`` (``OUT/<plugin>`` when no axis
reaches it and one seed is run), is readable and stable: the same spec always names the same
directories. Every error is a :class:`~ftx.errors.BadInput` naming the ``--grid`` expression.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from ftx.config import Setting, parse_set, plugins_for
from ftx.config.sources import SET_SYNTAX
from ftx.errors import BadInput

GRID_SYNTAX = (
    "[PLUGIN:]section.key=v1,v2,…, e.g. train.learning_rate=1e-4,3e-4 or qlora:method.r=8,32"
)
SEED_BASE = 42
"""``train.seed`` of the first seed when ``--seeds N`` > 1 and no ``train.seed`` is set (the
core default): seed ``i`` runs ``base + i``."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=,-]")


@dataclass(frozen=True)
class Axis:
    """One ``--grid`` expression: ``values`` typed as ``--set`` types them, ``texts`` as typed."""

    expr: str
    section: str
    key: str
    plugin: str | None
    values: tuple[Any, ...]
    texts: tuple[str, ...]

    @property
    def setting(self) -> Setting:
        return Setting(self.section, self.key, self.values[0], self.plugin)

    def set_expr(self, index: int) -> str:
        """The ``--set`` giving this axis its ``index``-th value."""
        scope = f"{self.plugin}:" if self.plugin else ""
        return f"{scope}{self.section}.{self.key}={self.texts[index]}"


@dataclass(frozen=True)
class Cell:
    """One run of a compare: ``plugin`` with ``choices`` (``(axis, value index)`` for each
    axis that reaches it) and seed ``seed_index`` (``seed`` its ``train.seed``, None: default)."""

    plugin: str
    choices: tuple[tuple[Axis, int], ...] = ()
    seed_index: int = 0
    seed: int | None = None
    label_parts: tuple[str, ...] = field(default=(), compare=False)

    @property
    def name(self) -> str:
        """The run directory under the compare's, e.g. ``qlora/learning_rate=1e-4,r=8``."""
        label = ",".join(self.label_parts)
        return f"{self.plugin}/{label}" if label else self.plugin

    @property
    def group(self) -> str:
        """The cell's name without its seed: the cells of one group differ only in seed."""
        label = ",".join(p for p in self.label_parts if not p.startswith("seed="))
        return f"{self.plugin}/{label}" if label else self.plugin

    @property
    def grid_values(self) -> dict[str, str]:
        """``{"train.learning_rate": "1e-4", …}``: the axis values this cell runs with."""
        return {f"{a.section}.{a.key}": a.texts[i] for a, i in self.choices}

    def sets(self) -> list[str]:
        """The ``--set``s that make this cell: its grid values, then its seed."""
        out = [axis.set_expr(i) for axis, i in self.choices]
        if self.seed is not None:
            out.append(f"train.seed={self.seed}")
        return out


def split_values(text: str) -> list[str]:
    """``"1e-4,3e-4"`` -> ``["1e-4", "3e-4"]``; commas inside brackets, braces or quotes stay."""
    parts, depth, quote, current = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return parts


def parse_axis(expr: str) -> Axis:
    """One ``--grid`` expression; BadInput when malformed, empty or with a repeated value."""
    lhs, sep, rhs = expr.partition("=")
    if not sep:
        raise BadInput(f"--grid {expr!r}: expected {GRID_SYNTAX}")
    texts = split_values(rhs)
    if not rhs.strip() or any(not t for t in texts):
        raise BadInput(
            f"--grid {expr!r}: empty value in the grid",
            hint=f"give one or more comma-separated values: {GRID_SYNTAX}",
        )
    settings = []
    for text in texts:
        one = f"{lhs}={text}"
        try:
            settings.append(parse_set(one))
        except BadInput as exc:  # worded for the whole --grid, not the --set made of one value
            message = exc.message.replace(f"--set {one!r}", f"--grid {expr!r}", 1)
            raise BadInput(message.replace(SET_SYNTAX, GRID_SYNTAX), hint=exc.hint) from None
    typed = [_value_key(s.value) for s in settings]  # 1e-4 and 0.0001 are one value
    if len(set(typed)) != len(typed):
        raise BadInput(f"--grid {expr!r}: a value is repeated", hint="give each value once")
    first = settings[0]
    return Axis(
        expr=expr,
        section=first.section,
        key=first.key,
        plugin=first.plugin,
        values=tuple(s.value for s in settings),
        texts=tuple(texts),
    )


def _value_key(value: Any) -> tuple[str, Any]:
    """What makes two grid values the same: a number whatever its spelling (``1e-4``, which
    YAML 1.1 leaves a string, and ``0.0001``), anything else as typed."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return ("number", float(value))
        except ValueError:
            pass
    return ("value", repr(value))


def parse_grid(exprs: list[str]) -> list[Axis]:
    """Every ``--grid`` expression; BadInput for one key given twice with the same scope."""
    axes = [parse_axis(e) for e in exprs]
    seen: dict[tuple[str | None, str, str], str] = {}
    for axis in axes:
        where = (axis.plugin, axis.section, axis.key)
        if where in seen:
            raise BadInput(
                f"--grid {axis.expr!r}: {axis.section}.{axis.key} is already a grid axis "
                f"({seen[where]!r})",
                hint="give all its values in one --grid",
            )
        seen[where] = axis.expr
    return axes


def axes_for(axes: list[Axis], declared: dict[str, set[str]]) -> dict[str, list[Axis]]:
    """``{plugin: the axes that reach it}``; BadInput for an axis that reaches no compared
    plugin, and for two axes that set the same key of one plugin."""
    reach: dict[str, list[Axis]] = {name: [] for name in declared}
    for axis in axes:
        try:
            takers = plugins_for(axis.setting, declared, role="compared")
        except BadInput as exc:
            raise BadInput(
                exc.message.replace("--set", "--grid", 1),
                hint=(exc.hint or "").replace("=VALUE", "=V1,V2").replace("=…", "=V1,V2"),
            ) from None
        for name in takers:
            clash = [a for a in reach[name] if (a.section, a.key) == (axis.section, axis.key)]
            if clash:
                raise BadInput(
                    f"--grid {axis.expr!r} and --grid {clash[0].expr!r} both set "
                    f"{axis.section}.{axis.key} of {name}",
                    hint="keep one of them",
                )
            reach[name].append(axis)
    return reach


def _short(axis: Axis, mine: list[Axis]) -> str:
    """``key``, or ``section.key`` when two axes of one plugin share the key."""
    same = [a for a in mine if a.key == axis.key]
    return axis.key if len(same) == 1 else f"{axis.section}.{axis.key}"


def safe(text: str) -> str:
    """A value as a directory-name part: anything but letters, digits and ``._+=,-`` -> ``_``."""
    return _UNSAFE.sub("_", text) or "_"


def expand(
    names: list[str],
    axes: list[Axis],
    declared: dict[str, set[str]],
    *,
    seeds: int = 1,
    seed_base: int = SEED_BASE,
) -> list[Cell]:
    """Every cell: for each plugin, the product of the values of the axes that reach it (an
    axis that does not reach a plugin multiplies nothing), times ``seeds``. BadInput for
    ``seeds`` < 1, a ``train.seed`` axis with ``seeds`` > 1, and two cells with one name."""
    if seeds < 1:
        raise BadInput(f"--seeds {seeds}: must be at least 1")
    if seeds > 1 and any((a.section, a.key) == ("train", "seed") for a in axes):
        raise BadInput("--grid train.seed and --seeds both set the seed", hint="use one of them")
    reach = axes_for(axes, {name: declared[name] for name in names})
    cells: list[Cell] = []
    for name in names:
        mine = reach[name]
        for combo in itertools.product(*(range(len(a.values)) for a in mine)):
            choices = tuple(zip(mine, combo, strict=True))
            parts = tuple(f"{_short(a, mine)}={safe(a.texts[i])}" for a, i in choices)
            for s in range(seeds):
                seed = seed_base + s if seeds > 1 else None
                label = (*parts, f"seed={seed}") if seed is not None else parts
                cells.append(Cell(name, choices, s, seed, label))
    named: dict[str, Cell] = {}
    for cell in cells:
        if cell.name in named:
            raise BadInput(
                f"--grid: two cells would share the directory {cell.name} (values that differ "
                "only in characters a directory name cannot hold)",
                hint="spell the values so that they differ in letters or digits",
            )
        named[cell.name] = cell
    return cells


def seed_base(sets: list[str]) -> int:
    """``train.seed`` given by an unscoped ``--set`` (the last one), else :data:`SEED_BASE`."""
    base = SEED_BASE
    for expr in sets:
        s = parse_set(expr)
        if (s.section, s.key, s.plugin) == ("train", "seed", None) and isinstance(s.value, int):
            base = s.value
    return base
