"""Reward functions for objectives that learn from rewards (``grpo``): find, load, check, call.

A reward is a plain function with TRL's reward signature::

    def reward(prompts, completions, completion_ids, **kwargs) -> list[float | None]

called on a batch: ``prompts`` (each a list of messages), ``completions`` (each
``[{"role": "assistant", "content": text}]``), ``completion_ids`` (each a list of token ids) and,
as keyword arguments, every other column of the data rows (one value per completion), plus what
the trainer adds (``trainer_state``, ``log_extra``, ``log_metric``) and ``ftx_options`` (the
run's ``objective:`` options). It returns one number per completion, or None where it does not
apply. Higher is better.

Three ways to name one in ``objective.rewards``:

* an installed reward: an entry point in group ``ftx.rewards`` (``ftx plugins`` lists them with
  kind ``reward``; ``exact``, ``format``, ``json_valid``, ``json_field`` and ``length`` come
  with ftx-grpo);
* ``module:function``: importable Python;
* ``path/to/file.py`` (its function ``reward``) or ``path/to/file.py:function``.

The last two run the user's code: ftx says so once per reward, as transformers does for remote
code. :func:`check_rewards` calls every reward, before any model loads, on the rows with an
empty completion (all of them, unless that takes over two seconds), so a reward that cannot be
imported, takes the wrong arguments, fails (on a row without the column it reads, say), or
returns the wrong count or something other than numbers is a :class:`BadInput` naming it and
the row. During training each reward runs through :class:`RewardCall`, which turns a
failure into :class:`RewardFailed` naming the reward and the row. Nothing here imports torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ftx import REWARD_ENTRY_POINT_GROUP
from ftx.errors import BadInput, RunFailed

TRAINER_ARGUMENTS = (
    "prompts",
    "completions",
    "completion_ids",
    "trainer_state",
    "log_extra",
    "log_metric",
    "environments",
    "ftx_options",
)
"""Keyword arguments the trainer (and ftx) pass every reward: no data column may be named so."""
HIDDEN_COLUMNS = ("prompt_ids", "ftx_row")
"""Columns ftx adds to every example for itself; rewards do not see them."""
CHECK_CHUNK = 64
"""Rows per call when :func:`check_rewards` checks the rewards before training."""
CHECK_SECONDS = 2.0
"""How long :func:`check_rewards` goes on through the rows, per reward (the first call is
always made)."""
_warned: set[str] = set()


@dataclass(frozen=True)
class Reward:
    """One loaded reward: its ``name`` (as given in ``objective.rewards``), the function, and
    where it came from (``distribution version`` or the user's module/file)."""

    name: str
    function: Callable[..., Any]
    origin: str


class RewardFailed(RunFailed):
    """A reward raised or returned something unusable during training. Exit code 1; the run
    directory keeps its last checkpoint and can be resumed once the reward is fixed."""


def discover_rewards() -> list[Any]:
    """Every installed reward (entry-point group ``ftx.rewards``), each loaded in isolation, as
    :class:`ftx.plugins.PluginInfo` with ``kind="reward"`` (status ``ok`` or the error)."""
    from ftx.plugins import _describe, info_for, strict

    found: dict[str, Any] = {}
    for ep in metadata.entry_points(group=REWARD_ENTRY_POINT_GROUP):
        info = info_for(ep, "reward")
        try:
            info.obj = ep.load()
            if not callable(info.obj):
                raise TypeError(f"{ep.value} is {type(info.obj).__name__}, not a function")
        except Exception as exc:
            if strict():
                raise
            info.obj, info.status = None, _describe(exc)
        if ep.name in found:
            info.status = f"duplicate reward name '{ep.name}'"
            continue
        found[ep.name] = info
    return [found[k] for k in sorted(found)]


def load_rewards(specs: list[str]) -> list[Reward]:
    """Each of ``specs`` (installed name, ``module:function``, ``file.py[:function]``) loaded;
    BadInput naming the one that cannot be."""
    installed = {info.name: info for info in discover_rewards()}
    return [load_reward(str(spec), installed) for spec in specs]


def load_reward(spec: str, installed: dict[str, Any]) -> Reward:
    """One reward (see the module docstring); BadInput naming ``spec`` when it cannot load."""
    info = installed.get(spec)
    if info is not None:
        if not info.ok:
            raise BadInput(
                f"objective.rewards: reward '{spec}' ({info.distribution}) failed to load: "
                f"{info.status}",
                hint="fix or reinstall that package (`ftx plugins` lists rewards)",
            )
        return Reward(spec, info.obj, f"{info.distribution} {info.version}")
    path, _, attr = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if path.endswith(".py"):
        function = _from_file(spec, Path(path), attr or "reward")
    elif ":" in spec:
        function = _from_module(spec, path, attr)
    else:
        from ftx.options import did_you_mean

        names = sorted(installed)
        raise BadInput(
            f"objective.rewards: unknown reward '{spec}'{did_you_mean(spec, names)}; "
            f"installed: {', '.join(names) or 'none'}",
            hint="name an installed reward, module:function, or path/to/file.py[:function]",
        )
    _warn_user_code(spec)
    return Reward(spec, function, "user code")


def _from_module(spec: str, module: str, attr: str) -> Callable[..., Any]:
    try:
        loaded = importlib.import_module(module)
    except Exception as exc:
        raise BadInput(
            f"objective.rewards: reward '{spec}': cannot import {module}: "
            f"{type(exc).__name__}: {exc}",
            hint="check the module name and that it is importable (on PYTHONPATH)",
        ) from None
    return _function(spec, loaded, attr)


def _from_file(spec: str, path: Path, attr: str) -> Callable[..., Any]:
    if not path.is_file():
        raise BadInput(f"objective.rewards: reward '{spec}': no file {path}")
    name = f"ftx_user_reward_{abs(hash(str(path.resolve())))}"
    try:
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # so the trainer's checkpoints can pickle it if they must
        module_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise BadInput(
            f"objective.rewards: reward '{spec}': {path} failed to import: "
            f"{type(exc).__name__}: {exc}",
            hint="fix the file (run it with python to see the whole error)",
        ) from None
    return _function(spec, module, attr)


def _function(spec: str, module: Any, attr: str) -> Callable[..., Any]:
    function = getattr(module, attr, None)
    if not callable(function):
        raise BadInput(
            f"objective.rewards: reward '{spec}': {module.__name__} has no function {attr!r}",
            hint="name the function after a colon: module:function or file.py:function",
        )
    return function


def _warn_user_code(spec: str) -> None:
    if spec in _warned:
        return
    _warned.add(spec)
    sys.stderr.write(
        f"warning: objective.rewards runs your code: reward '{spec}' is imported and called in "
        "this process (as transformers' trust_remote_code does); use only code you trust\n"
    )


def empty_completion(prompt: Any) -> Any:
    """An empty completion in the shape the trainer passes (conversational prompts get an
    assistant message, text prompts text)."""
    return [{"role": "assistant", "content": ""}] if isinstance(prompt, list) else ""


def completion_text(completion: Any) -> str:
    """The text of one completion, conversational (a list of messages) or plain."""
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


def check_rewards(rewards: list[Reward], examples: list[dict], options: dict[str, Any]) -> None:
    """Call every reward on the rows, each with an empty completion (as the trainer calls it,
    ``trainer_state=None``), :data:`CHECK_CHUNK` rows a call, before any model loads: the first
    call always, then on through the rows for up to :data:`CHECK_SECONDS` per reward (a
    reward that reads a column is then checked on every row of a file of tens of thousands;
    rows past the budget are checked in training, where :class:`RewardCall` names a failing
    row). BadInput naming the reward and the first failing row for the wrong signature, an
    exception, the wrong count or a value that is not a number."""
    for reward in rewards:
        call = RewardCall(reward, options)
        started = time.monotonic()
        for start in range(0, len(examples), CHECK_CHUNK):
            _check_chunk(call, examples[start : start + CHECK_CHUNK], first=start == 0)
            if time.monotonic() - started > CHECK_SECONDS:
                break


def _check_chunk(call: RewardCall, batch: list[dict], *, first: bool) -> None:
    reward = call.reward
    kwargs = call.arguments(batch)
    rows = [e.get("ftx_row", "?") for e in batch]
    if first:
        try:
            inspect.signature(reward.function).bind(**kwargs)
        except TypeError as exc:
            raise BadInput(
                f"objective.rewards: reward '{reward.name}' has the wrong signature ({exc})",
                hint="a reward is def f(prompts, completions, completion_ids, **kwargs) -> "
                "list[float | None]; the **kwargs receive the data columns",
            ) from None
        except ValueError:
            pass  # a builtin or C function without a signature: calling it tells
    try:
        values = reward.function(**kwargs)
    except Exception as exc:
        raise BadInput(
            f"objective.rewards: reward '{reward.name}' failed on row "
            f"{call.failing_row(kwargs, rows)} (called with an empty completion): "
            f"{type(exc).__name__}: {exc}",
            hint="fix the reward or the data it reads",
        ) from None
    problem = result_problem(values, len(batch))
    if problem is not None:
        span = f"{rows[0]}" if len(rows) == 1 else f"{rows[0]} to {rows[-1]}"
        raise BadInput(
            f"objective.rewards: reward '{reward.name}' {problem} for rows {span} (called "
            "with an empty completion)",
            hint="return one float (or None) per completion",
        )


def result_problem(values: Any, expected: int) -> str | None:
    """What is wrong with a reward's return value for ``expected`` completions, or None."""
    if not isinstance(values, (list, tuple)):
        return f"returned {type(values).__name__}, not a list of numbers"
    if len(values) != expected:
        return f"returned {len(values)} values for {expected} completions"
    for index, value in enumerate(values):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return (
                f"returned {type(value).__name__} {value!r} (completion {index + 1}), not a number"
            )
        if not math.isfinite(float(value)):
            return f"returned {value!r} (completion {index + 1}), not a finite number"
    return None


class RewardCall:
    """A reward as the trainer calls it: ftx's own columns hidden, the run's objective options
    passed as ``ftx_options``, failures turned into :class:`RewardFailed` naming the reward and
    the first row it fails on. ``__name__`` is the reward's name (TRL logs ``rewards/NAME``)."""

    def __init__(self, reward: Reward, options: dict[str, Any], *, resume: str = "") -> None:
        self.reward = reward
        self.options = options
        self.resume = resume
        self.__name__ = reward.name.rsplit(":", 1)[-1].rsplit("/", 1)[-1].removesuffix(".py")

    def arguments(self, examples: list[dict]) -> dict[str, Any]:
        """The keyword arguments for ``examples`` (each with an empty completion), as in
        training: prompts, completions, completion_ids, the columns, the trainer's extras."""
        columns = {k for e in examples for k in e if k not in HIDDEN_COLUMNS and k != "prompt"}
        kwargs: dict[str, Any] = {k: [e.get(k) for e in examples] for k in sorted(columns)}
        kwargs.update(
            prompts=[e["prompt"] for e in examples],
            completions=[empty_completion(e["prompt"]) for e in examples],
            completion_ids=[[] for _ in examples],
            trainer_state=None,
            log_extra=lambda column, values: None,
            log_metric=lambda name, value: None,
        )
        return self._with_options(kwargs)

    def _with_options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in kwargs.items() if k not in HIDDEN_COLUMNS} | {
            "ftx_options": self.options
        }

    def __call__(self, **kwargs: Any) -> list[float | None]:
        rows = kwargs.get("ftx_row") or []
        args = self._with_options(kwargs)
        expected = len(kwargs.get("completions") or [])
        try:
            values = self.reward.function(**args)
        except Exception as exc:
            row = self.failing_row(args, rows)
            raise self._failed(row, f"{type(exc).__name__}: {exc}") from None
        problem = result_problem(values, expected)
        if problem is not None:
            raise self._failed(", ".join(dict.fromkeys(map(str, rows))) or "?", problem)
        return list(values)

    def failing_row(self, args: dict[str, Any], rows: list[Any]) -> str:
        """The first row whose completion alone makes the reward fail (the batch's rows when
        none does alone)."""
        count = len(args.get("completions") or [])
        for index in range(count):
            one = {
                k: [v[index]] if isinstance(v, list) and len(v) == count else v
                for k, v in args.items()
            }
            try:
                self.reward.function(**one)
            except Exception:
                return str(rows[index]) if index < len(rows) else f"completion {index + 1}"
        return ", ".join(dict.fromkeys(map(str, rows))) or "?"

    def _failed(self, row: str, problem: str) -> RewardFailed:
        return RewardFailed(
            f"reward '{self.reward.name}' failed on row {row}: {problem}"
            + (f"\n  {self.resume}" if self.resume else "")
        )
