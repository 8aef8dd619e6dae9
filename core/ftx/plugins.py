"""Plugin discovery, isolation and selection.

Method plugins are ordinary distributions with an entry point in the ``ftx.plugins`` group whose
object is a module (or class instance) carrying ``@ftx.hookimpl`` functions. Every entry point is
loaded in its own ``try``: a plugin that fails to import, or whose hook implementations do not
match the specs, is listed with its error by ``ftx plugins`` and never breaks another plugin,
``ftx --help`` or ``ftx plugins``. Set ``FTX_STRICT_PLUGINS=1`` to re-raise instead (for plugin
authors debugging a load failure).

For a run the host builds a manager holding the core defaults and *only* the selected plugin.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from ftx import ENTRY_POINT_GROUP, PROJECT, hookspecs
from ftx.errors import BadInput
from ftx.options import did_you_mean

STRICT_ENV = "FTX_STRICT_PLUGINS"
BUILTIN_DISTRIBUTIONS = {"fft": "ftx-fft", "sft": "ftx-sft", "qlora": "ftx-qlora"}
METHOD_HOOKS = ("load_model", "select_trainable", "build_trainer", "export")


@dataclass
class PluginInfo:
    """One discovered plugin. ``status`` is ``"ok"`` or the error that kept it from loading."""

    name: str
    distribution: str
    version: str
    module: str
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


def discover() -> list[PluginInfo]:
    """Load every ``ftx.plugins`` entry point, each in isolation, sorted by name."""
    found: dict[str, PluginInfo] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            name=ep.name,
            distribution=dist.metadata["Name"] if dist is not None else "?",
            version=dist.version if dist is not None else "?",
            module=ep.value,
        )
        try:
            info.obj = ep.load()
            info.hooks = validate_plugin(info.obj, ep.name)
        except Exception as exc:
            if strict():
                raise
            info.obj = None
            info.status = _describe(exc)
        if ep.name in found:
            info.status = (
                f"duplicate plugin name '{ep.name}' (also from {found[ep.name].distribution})"
            )
        found.setdefault(ep.name, info)
    return [found[k] for k in sorted(found)]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ValueError) and str(exc).startswith("plugin '"):
        return str(exc)
    last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({os.path.basename(last.filename)}:{last.lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def get_plugin(name: str, plugins: list[PluginInfo] | None = None) -> PluginInfo:
    """Return the loaded plugin ``name`` or raise BadInput listing what is installed."""
    plugins = discover() if plugins is None else plugins
    by_name = {p.name: p for p in plugins}
    if name in by_name and by_name[name].ok:
        return by_name[name]
    if name in by_name:
        raise BadInput(
            f"plugin '{name}' is installed but failed to load: {by_name[name].status}",
            hint=f"run with {STRICT_ENV}=1 to see the full traceback",
        )
    installed = ", ".join(p.name for p in plugins if p.ok) or "none"
    dist = BUILTIN_DISTRIBUTIONS.get(name, f"ftx-{name}")
    raise BadInput(
        f"unknown plugin '{name}'{did_you_mean(name, by_name)}; installed: {installed}",
        hint=f"pip install {dist}",
    )


def manager_for(plugin: PluginInfo | None, *, defaults: bool = True) -> pluggy.PluginManager:
    """A manager with the core defaults (unless ``defaults=False``) and only ``plugin``."""
    pm = new_manager()
    if defaults:
        from ftx import defaults as core_defaults

        pm.register(core_defaults, name="core")
    if plugin is not None:
        pm.register(plugin.obj, name=plugin.name)
    return pm


def call_first(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> tuple[Any, str | None]:
    """Call a firstresult hook and also say who answered: ``(result, plugin_name)``.

    Implementations are tried in pluggy's order (tryfirst, then last registered first, trylast
    at the end); each gets only the keyword arguments it declares. ``(None, None)`` when nobody
    answered.
    """
    hook = getattr(pm.hook, hook_name)
    for impl in reversed(hook.get_hookimpls()):
        if impl.hookwrapper or impl.wrapper:
            continue
        args = {k: kwargs[k] for k in impl.argnames if k in kwargs}
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
        args = {k: kwargs[k] for k in impl.argnames if k in kwargs}
        answers.append((impl.function(**args), impl.plugin_name))
    return answers
