"""Plugin discovery, isolation and selection.

Plugins are of two kinds: **methods** (entry-point group ``ftx.plugins``: what trains) and
**objectives** (group ``ftx.objectives``: what a run learns from). Either is an ordinary
distribution whose entry point is a module (or class instance) carrying ``@ftx.hookimpl``
functions; names are unique across both kinds. Every entry point is
loaded in its own ``try``: a plugin that fails to import, or whose hook implementations do not
match the specs, is listed with its error by ``ftx plugins`` and never breaks another plugin,
``ftx --help`` or ``ftx plugins``. Set ``FTX_STRICT_PLUGINS=1`` to re-raise instead (for plugin
authors debugging a load failure).

For a run the host builds a manager holding the core defaults, the selected objective and the
selected method, nothing else. This module names no plugin.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from ftx import ENTRY_POINT_GROUPS, PROJECT, hookspecs
from ftx.errors import BadInput
from ftx.options import article, did_you_mean

STRICT_ENV = "FTX_STRICT_PLUGINS"
KIND_FLAGS = {"method": "--plugin", "objective": "--objective"}
METHOD_HOOKS = ("load_model", "select_trainable", "build_trainer", "export")


@dataclass
class PluginInfo:
    """One discovered plugin. ``status`` is ``"ok"`` or the error that kept it from loading."""

    name: str
    distribution: str
    version: str
    module: str
    kind: str = "method"
    status: str = "ok"
    obj: Any = None
    hooks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "kind": self.kind,
            "status": self.status,
            "hooks": self.hooks,
        }


def strict() -> bool:
    return os.environ.get(STRICT_ENV, "").lower() not in {"", "0", "false", "no"}


def new_manager() -> pluggy.PluginManager:
    """A plugin manager that knows the ftx hook specs and nothing else."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def validate_plugin(obj: Any, name: str) -> list[str]:
    """Register ``obj`` in a scratch manager; return the hook names it implements.

    Raises ``ValueError`` naming the plugin and the hook when an implementation takes an argument
    the spec does not offer or implements a hook that does not exist.
    """
    pm = new_manager()
    try:
        pm.register(obj, name=name)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ValueError(f"plugin '{name}': {_clean_validation_message(exc)}") from exc
    return sorted(
        hook_name
        for hook_name in dir(pm.hook)
        if not hook_name.startswith("_")
        and any(impl.plugin_name == name for impl in getattr(pm.hook, hook_name).get_hookimpls())
    )


def _clean_validation_message(exc: pluggy.PluginValidationError) -> str:
    text = str(exc)
    if "unknown hook" in text:
        # pluggy: "unknown hook 'x' in plugin <module ...>"
        hook = text.split("'")[1] if "'" in text else text
        known = [n for n in dir(hookspecs) if not n.startswith("_") and n != "hookspec"]
        return f"hook '{hook}' is not an ftx hook{did_you_mean(hook, known)}"
    return text


def info_for(ep: metadata.EntryPoint, kind: str) -> PluginInfo:
    """A :class:`PluginInfo` of ``kind`` for entry point ``ep``, not loaded yet."""
    dist = getattr(ep, "dist", None)
    return PluginInfo(
        name=ep.name,
        distribution=dist.metadata["Name"] if dist is not None else "?",
        version=dist.version if dist is not None else "?",
        module=ep.value,
        kind=kind,
    )


def discover(kind: str | None = None) -> list[PluginInfo]:
    """Load every method and objective entry point, each in isolation, sorted by name; only
    those of ``kind`` (``"method"``/``"objective"``) when given. A name used twice, within a
    kind or across kinds, is listed once, as a duplicate naming every distribution that
    installs it, and can be selected by none of them: which one entry-point order would pick
    is an accident of installation, and a third party's plugin must not silently stand in for
    another (or a built-in)."""
    found: dict[str, PluginInfo] = {}
    claimants: dict[str, list[PluginInfo]] = {}
    for group_kind, group in ENTRY_POINT_GROUPS.items():
        for ep in metadata.entry_points(group=group):
            info = info_for(ep, group_kind)
            try:
                info.obj = ep.load()
                info.hooks = validate_plugin(info.obj, ep.name)
            except Exception as exc:
                if strict():
                    raise
                info.obj = None
                info.status = _describe(exc)
            claimants.setdefault(ep.name, []).append(info)
            found.setdefault(ep.name, info)
    for name, infos in claimants.items():
        if len(infos) > 1:
            found[name].status = duplicate_status(name, infos)
            found[name].obj = None
    return [found[k] for k in sorted(found) if kind is None or found[k].kind == kind]


DUPLICATE = "duplicate plugin name"


def duplicate_status(name: str, infos: list[PluginInfo]) -> str:
    """The error of a name that several entry points claim, naming each claimant."""
    who = " and ".join(f"the {i.kind} from {i.distribution} ({i.module})" for i in infos)
    return f"{DUPLICATE} '{name}': {who} {'both' if len(infos) == 2 else 'all'} use it"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ValueError) and str(exc).startswith("plugin '"):
        return str(exc)
    last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({os.path.basename(last.filename)}:{last.lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def get_plugin(
    name: str, plugins: list[PluginInfo] | None = None, *, kind: str = "method"
) -> PluginInfo:
    """Return the loaded plugin ``name`` of ``kind`` or raise BadInput: a name several
    distributions claim names them all; a plugin of the other kind says which flag takes it;
    an unknown name lists what is installed of ``kind`` and the ``pip install`` that would
    bring it."""
    plugins = discover() if plugins is None else plugins
    by_name = {p.name: p for p in plugins}
    found = by_name.get(name)
    if found is not None and found.status.startswith(DUPLICATE):
        raise BadInput(
            f"plugin '{name}' cannot be chosen: {found.status}",
            hint="pip uninstall the one you did not mean to install (`ftx plugins` lists "
            "what each distribution provides)",
        )
    if found is not None and found.kind != kind:
        raise BadInput(
            f"{name} is {article(found.kind)} {found.kind}, not {article(kind)} {kind}: "
            f"use {KIND_FLAGS[found.kind]} {name}",
        )
    if found is not None and found.ok:
        return found
    if found is not None:
        raise BadInput(
            f"plugin '{name}' is installed but failed to load: {found.status}",
            hint=f"run with {STRICT_ENV}=1 to see the full traceback",
        )
    from ftx.catalogue import install_hint

    same_kind = [p.name for p in plugins if p.kind == kind]
    installed = ", ".join(p.name for p in plugins if p.kind == kind and p.ok) or "none"
    noun = "plugin" if kind == "method" else kind  # what the flag is called: --plugin/--objective
    suggestion = did_you_mean(name, same_kind)
    raise BadInput(
        f"unknown {noun} '{name}'{suggestion}; installed: {installed}",
        hint=install_hint(name, close_match=bool(suggestion)),
    )


def manager_for(
    plugin: PluginInfo | None,
    *,
    objective: PluginInfo | None = None,
    defaults: bool = True,
) -> pluggy.PluginManager:
    """A manager with the core defaults (unless ``defaults=False``), then ``objective``, then the
    method ``plugin``: later registrations answer ``firstresult`` hooks first, so the method can
    override what the objective provides."""
    pm = new_manager()
    if defaults:
        from ftx import defaults as core_defaults

        pm.register(core_defaults, name="core")
    if objective is not None:
        pm.register(objective.obj, name=objective.name)
    if plugin is not None:
        pm.register(plugin.obj, name=plugin.name)
    return pm


def call_first(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> tuple[Any, str | None]:
    """Call a firstresult hook and also say who answered: ``(result, plugin_name)``.

    Implementations are tried in pluggy's order (tryfirst, then last registered first, trylast
    at the end); each gets only the keyword arguments it declares (those with a default too,
    as pluggy passes them). ``(None, None)`` when nobody answered.
    """
    hook = getattr(pm.hook, hook_name)
    for impl in reversed(hook.get_hookimpls()):
        if impl.hookwrapper or impl.wrapper:
            continue
        args = _arguments(impl, kwargs)
        result = impl.function(**args)
        if result is not None:
            return result, impl.plugin_name
    return None, None


def call_all(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[tuple[Any, str]]:
    """Call a hook that every implementation answers: ``[(result, plugin_name), …]``, the
    core's first and the selected plugin's last (so merging in order lets the plugin win)."""
    hook = getattr(pm.hook, hook_name)
    answers = []
    for impl in hook.get_hookimpls():
        if impl.hookwrapper or impl.wrapper:
            continue
        answers.append((impl.function(**_arguments(impl, kwargs)), impl.plugin_name))
    return answers


def merged_train_defaults(pm: pluggy.PluginManager, device: Any, objective: str) -> dict[str, Any]:
    """Every ``train_defaults`` answer for ``objective`` on ``device`` (a
    :class:`ftx.context.DeviceInfo`), merged in :func:`call_all`'s order: later answers win."""
    merged: dict[str, Any] = {}
    try:
        answers = call_all(pm, "train_defaults", device=device, objective=objective)
    except BadInput:
        raise
    except Exception as exc:  # a plugin's bug, met before any model loads: name who and where
        raise _hook_failed(
            pm, "train_defaults", exc, fix="fix the plugin, or choose another"
        ) from (exc if strict() else None)
    for answer, name in answers:
        if answer is not None and not isinstance(answer, dict):
            raise BadInput(
                f"plugin '{name}': hook train_defaults returned {type(answer).__name__}, not a "
                "dict of TrainingArguments fields",
                hint="return {'learning_rate': …, …} (or None)",
            )
        merged.update(answer or {})
    return merged


def declared_options(pm: pluggy.PluginManager, hook_name: str) -> list[Any]:
    """The options ``hook_name`` (``method_options``/``objective_options``) declares, checked:
    BadInput naming the plugin and the hook for one that raises (an :class:`ftx.options.Option`
    whose default lies outside its range, choices or type raises ValueError), that returns
    something other than Options, or that declares one name twice."""
    from ftx.options import Option

    try:
        declared, who = call_first(pm, hook_name)
    except BadInput:
        raise
    except Exception as exc:
        raise _hook_failed(pm, hook_name, exc, fix="fix the plugin's declaration") from (
            exc if strict() else None
        )
    options = list(declared or [])
    for option in options:
        if not isinstance(option, Option):
            raise BadInput(
                f"plugin '{who}': hook {hook_name} returned {type(option).__name__} "
                f"{option!r}, not an ftx.options.Option"
            )
    names = [o.name for o in options]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise BadInput(
            f"plugin '{who}': hook {hook_name} declares the option {twice[0]!r} twice",
            hint="declare each option once",
        )
    return options


def _hook_failed(pm: pluggy.PluginManager, hook_name: str, exc: Exception, *, fix: str) -> BadInput:
    """The BadInput for a hook implementation that raised ``exc``: the plugin, the hook, the
    cause, and ``fix`` with the way to the traceback."""
    return BadInput(
        f"plugin '{_failing_plugin(pm, hook_name, exc)}': hook {hook_name} failed: "
        f"{type(exc).__name__}: {exc}",
        hint=f"{fix} (run with {STRICT_ENV}=1 for the traceback)",
    )


def _failing_plugin(pm: pluggy.PluginManager, hook_name: str, exc: BaseException) -> str:
    """The registered plugin whose ``hook_name`` implementation raised ``exc`` (the innermost
    frame of the traceback that lies in one of them), or ``?``."""
    impls = {
        getattr(impl.function, "__code__", None): impl.plugin_name
        for impl in getattr(pm.hook, hook_name).get_hookimpls()
    }
    frame_codes = [frame.f_code for frame, _ in traceback.walk_tb(exc.__traceback__)]
    for code in reversed(frame_codes):
        if code in impls:
            return impls[code]
    return "?"


def _arguments(impl: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's keyword arguments that ``impl`` declares, with or without a default."""
    return {k: kwargs[k] for k in (*impl.argnames, *impl.kwargnames) if k in kwargs}
