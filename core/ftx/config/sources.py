"""Where config values come from: YAML files and ``--set [PLUGIN:]section.key=value``."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from ftx.config.tables import SECTIONS
from ftx.errors import BadInput
from ftx.options import did_you_mean


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false are bools. YAML 1.1 also reads
    yes/no/on/off as bools, which turns ``save_strategy: no`` into ``False``. A key given twice
    in one mapping is an error (YAML 1.2 says keys are unique; PyYAML keeps the last one
    silently, so one of two conflicting settings would be lost without a word)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # SafeLoader reports an unhashable key itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    _Yaml12Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), [_first]
    )


def load_yaml(text: str) -> Any:
    """Parse YAML the way ftx reads configs and ``--set`` values (YAML 1.2 booleans)."""
    return yaml.load(text, Loader=_Yaml12Loader)


def load_file(path: str | Path | None) -> dict[str, Any]:
    """Read a YAML config file into ``{section: {key: value}}``; BadInput on any problem.

    An optional top-level ``plugin: NAME`` is returned under ``"plugin"`` (a run's saved
    ``config.yaml`` has one, so it can be reused with ``--config``).
    """
    if path is None:
        return {}
    path = Path(path)
    if path.is_dir():
        raise BadInput(
            f"config file {path} is a directory",
            hint="pass a YAML file, e.g. a run's config.yaml",
        )
    if not path.is_file():
        raise BadInput(f"config file not found: {path}")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise BadInput(f"{path}{where}: not valid YAML ({problem})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a mapping with sections {', '.join(SECTIONS)}")
    plugin = data.pop("plugin", None)
    if plugin is not None and not isinstance(plugin, str):
        raise BadInput(f"{path}: 'plugin' must be a plugin name, got {plugin!r}")
    for section, body in data.items():
        if section not in SECTIONS:
            raise BadInput(
                f"{path}: unknown section '{section}'{did_you_mean(str(section), SECTIONS)}; "
                f"sections are {', '.join(SECTIONS)}"
            )
        if body is not None and not isinstance(body, dict):
            raise BadInput(f"{path}: section '{section}' must be a mapping of key: value")
    out: dict[str, Any] = {s: dict(data.get(s) or {}) for s in SECTIONS}
    if plugin is not None:
        out["plugin"] = plugin
    return out


@dataclasses.dataclass(frozen=True)
class Setting:
    """One ``--set [PLUGIN:]section.key=value``: ``plugin`` is ``None`` unless scoped."""

    section: str
    key: str
    value: Any
    plugin: str | None = None

    def applies_to(self, plugin: str | None) -> bool:
        return self.plugin is None or self.plugin == plugin


SET_SYNTAX = (
    "section.key=value, e.g. train.max_steps=50 (PLUGIN:section.key=value scopes it to one "
    "plugin, e.g. qlora:method.r=8)"
)


def parse_set(expr: str) -> Setting:
    """Parse ``[PLUGIN:]section.key=value`` (value read as YAML) — the one ``--set`` syntax of
    ``ftx run``, ``ftx compare`` and ``ftx plan``. ``PLUGIN:`` scopes the value to one plugin
    (``qlora:method.r=8``), for commands that handle several plugins at once."""
    lhs, sep, raw = expr.partition("=")
    scope, colon, path = lhs.strip().rpartition(":")
    plugin = scope.strip() if colon else None
    section, dot, key = path.strip().partition(".")
    if not sep or not dot or not section or not key.strip() or (colon and not plugin):
        raise BadInput(f"--set {expr!r}: expected {SET_SYNTAX}")
    if section not in SECTIONS:
        hint = f"the sections are {', '.join(SECTIONS)}"
        if plugin is None and "." in key:  # e.g. qlora.method.r: a plugin's name as section
            hint = f"a plugin's option is set as PLUGIN:method.KEY, e.g. {section}:{key}"
        raise BadInput(
            f"--set {expr!r}: unknown section '{section}'{did_you_mean(section, SECTIONS)}",
            hint=hint,
        )
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return Setting(section=section, key=key.strip(), value=value, plugin=plugin)


def merge(
    file_cfg: dict[str, Any],
    flags: dict[str, Any],
    sets: list[str],
    *,
    plugin: str | None = None,
) -> dict[str, Any]:
    """Layer CLI flags (``{"model": {...}, "data": {...}}``) and ``--set``s over a file config.

    ``--set`` values scoped to another plugin than ``plugin`` are left out."""
    cfg = {s: dict(file_cfg.get(s) or {}) for s in SECTIONS}
    for section, values in flags.items():
        cfg[section].update({k: v for k, v in values.items() if v is not None})
    for expr in sets:
        setting = parse_set(expr)
        if setting.applies_to(plugin):
            cfg[setting.section][setting.key] = setting.value
    return cfg


def plugins_for(setting: Setting, declared: dict[str, set[str]], *, role: str) -> list[str]:
    """Which of several plugins (``declared``: ``{plugin: names of its options}``, e.g. those
    ``ftx compare`` runs or ``ftx plan`` estimates; ``role``, ``"compared"`` or ``"planned"``,
    names them in messages) one ``--set`` applies to — the rule every multi-plugin command
    follows:

    ``PLUGIN:section.key=value`` goes to that plugin only (BadInput if it is not among them);
    an unscoped ``method.KEY`` to every plugin that declares ``KEY`` (BadInput, with a
    did-you-mean, if none does); any other unscoped setting to all of them.
    """
    names = list(declared)
    spelled = f"{setting.plugin + ':' if setting.plugin else ''}{setting.section}.{setting.key}"
    if setting.plugin is not None:
        if setting.plugin not in declared:
            raise BadInput(
                f"--set {spelled}: plugin '{setting.plugin}' is not {role}"
                f"{did_you_mean(setting.plugin, names)}; {role}: {', '.join(names) or 'none'}",
                hint=f"scope it to one of: {', '.join(names) or 'none'}, or drop this --set",
            )
        return [setting.plugin]
    if setting.section != "method":
        return names
    takers = [name for name in names if setting.key in declared[name]]
    if not takers:
        known = set().union(*declared.values()) if declared else set()
        raise BadInput(
            f"--set {spelled}: no {role} plugin declares an option '{setting.key}'"
            f"{did_you_mean(setting.key, known)} ({role}: {', '.join(names)})",
            hint=f"a value for one plugin is PLUGIN:method.{setting.key}=VALUE, e.g. "
            f"{names[0] if names else 'PLUGIN'}:method.{setting.key}=…; "
            "`ftx plugins show NAME` lists a plugin's options",
        )
    return takers
