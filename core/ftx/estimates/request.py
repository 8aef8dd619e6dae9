"""What the ``estimate_memory`` hook is asked, and what every estimate derives from it.

A method plugin writes its estimate as a function of one :class:`EstimateRequest` and lets
:func:`estimator` take the hook's arguments::

    from ftx.estimates import EstimateRequest, MemoryEstimate, estimator

    @estimator
    def estimate(request: EstimateRequest) -> MemoryEstimate:
        shape = request.shape
        return request.dense(
            trainable_params=shape.total_params(),
            trainable_linear_params=shape.layers * shape.block_linear_params(),
            layers_with_grad=shape.layers,
            head_trainable=True,
        )

    # in the entry-point module, with the hook's signature:
    # return estimate(model_config, seq_len, batch_size, options, device, dtype)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ftx.context import DeviceInfo
from ftx.estimates.activations import activation_pair
from ftx.estimates.memory import MemoryEstimate, estimate_dense
from ftx.estimates.precision import Precision, precision_for
from ftx.estimates.shape import ModelShape, model_shape


@dataclass(frozen=True)
class EstimateRequest:
    """The ``estimate_memory`` hook's arguments (see its spec in :mod:`ftx.hookspecs`).

    ``model_config``: the model's config (any object with ``transformers``' attribute names);
    ``seq_len``/``batch_size``: padded tokens per row and rows per step; ``options``: the
    plugin's resolved options; ``device``: the device planned for; ``dtype``: the weights
    dtype a run would load. :attr:`shape` and :attr:`precision` are computed once, on first use
    (:attr:`shape` raises :class:`~ftx.errors.BadInput` for a config that is not a decoder-only
    language model).
    """

    model_config: Any
    seq_len: int
    batch_size: int
    options: Mapping[str, Any]
    device: DeviceInfo
    dtype: str

    @cached_property
    def shape(self) -> ModelShape:
        """:func:`~ftx.estimates.shape.model_shape` of :attr:`model_config`."""
        return model_shape(self.model_config)

    @cached_property
    def precision(self) -> Precision:
        """The precision a run of :attr:`dtype` on :attr:`device` uses (``precision_for``)."""
        return precision_for(self.device, self.dtype)

    @property
    def tokens(self) -> int:
        """Tokens per step: ``batch_size * seq_len``."""
        return self.batch_size * self.seq_len

    def activations(self, *, precision: Precision | None = None, **method: Any) -> tuple[int, int]:
        """Activation bytes of this step without and with checkpointing, in :attr:`precision`
        unless the method computes in another one (``precision``). ``method``: the method's
        keywords of :func:`~ftx.estimates.activations.activation_bytes` (``layers_with_grad``,
        ``head_trainable``, optional ``extra``)."""
        return activation_pair(
            self.shape, precision=precision or self.precision, **self._step, **method
        )

    def dense(self, **method: Any) -> MemoryEstimate:
        """:func:`~ftx.estimates.memory.estimate_dense` for this request's model and step;
        ``method``: its method keywords (``trainable_params``, ``trainable_linear_params``,
        ``layers_with_grad``, ``head_trainable``, optional ``notes``)."""
        return estimate_dense(self.shape, precision=self.precision, **self._step, **method)

    @property
    def _step(self) -> dict[str, Any]:
        """The step's keywords that every estimate helper takes the same way."""
        return {
            "seq_len": self.seq_len,
            "batch_size": self.batch_size,
            "device_kind": self.device.kind,
        }


Estimate = Callable[[EstimateRequest], "MemoryEstimate | None"]
HookArguments = Callable[
    [Any, int, int, Mapping[str, Any], DeviceInfo, str], "MemoryEstimate | None"
]


def estimator(fn: Estimate) -> HookArguments:
    """Make ``fn(request)`` callable with the hook's arguments, positional or by name:
    ``(model_config, seq_len, batch_size, options, device, dtype)``. The result keeps ``fn``'s
    name and docstring; ``fn`` stays reachable as ``.estimate``."""

    def from_hook_arguments(
        model_config: Any,
        seq_len: int,
        batch_size: int,
        options: Mapping[str, Any],
        device: DeviceInfo,
        dtype: str,
    ) -> MemoryEstimate | None:
        return fn(EstimateRequest(model_config, seq_len, batch_size, options, device, dtype))

    from_hook_arguments.__name__ = getattr(fn, "__name__", "estimate")
    from_hook_arguments.__qualname__ = getattr(fn, "__qualname__", "estimate")
    from_hook_arguments.__doc__ = fn.__doc__
    from_hook_arguments.__module__ = fn.__module__
    from_hook_arguments.estimate = fn  # type: ignore[attr-defined]
    return from_hook_arguments
