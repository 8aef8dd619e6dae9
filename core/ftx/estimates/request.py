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
    # return estimate(model_config, seq_len, batch_size, options, device, dtype, objective)

The objective's share (:class:`~ftx.context.ObjectiveTraits`, the hook's ``objective``) is
accounted here once, so no method's estimate repeats it: :meth:`EstimateRequest.activations`
and :meth:`EstimateRequest.dense` run ``sequences_per_row`` sequences per row (a DPO step
concatenates chosen and rejected: twice the activations), and :meth:`~EstimateRequest.dense`,
the builder of methods that train the model's own weights, adds a frozen reference copy of the
weights when ``reference == "policy"`` (:attr:`MemoryEstimate.reference`). An adapter method
builds its own estimate around :meth:`~EstimateRequest.activations` and adds no copy: its
reference is the model with the adapters disabled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from ftx.context import DeviceInfo, ObjectiveTraits
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
    dtype a run would load; ``objective``: the traits of the objective planned for (the
    supervised default: one sequence per row, no reference); ``optim``: the run's
    ``train.optim`` (``None``: the method's default for the device). :attr:`shape` and
    :attr:`precision` are computed once, on first use (:attr:`shape` raises
    :class:`~ftx.errors.BadInput` for a config that is not a decoder-only language model).
    """

    model_config: Any
    seq_len: int
    batch_size: int
    options: Mapping[str, Any]
    device: DeviceInfo
    dtype: str
    objective: ObjectiveTraits = field(default_factory=ObjectiveTraits)
    optim: str | None = None

    @cached_property
    def shape(self) -> ModelShape:
        """:func:`~ftx.estimates.shape.model_shape` of :attr:`model_config`."""
        return model_shape(self.model_config)

    @cached_property
    def precision(self) -> Precision:
        """The precision a run of :attr:`dtype` on :attr:`device` uses (``precision_for``)."""
        return precision_for(self.device, self.dtype)

    @property
    def sequences(self) -> int:
        """Sequences through the model per step: ``batch_size`` rows times the objective's
        ``sequences_per_row``."""
        return self.batch_size * max(1, int(self.objective.sequences_per_row))

    @property
    def tokens(self) -> int:
        """Tokens per step: ``sequences * seq_len``."""
        return self.sequences * self.seq_len

    @property
    def reference_copy(self) -> bool:
        """Whether the objective needs a reference model (``reference == "policy"``)."""
        return self.objective.reference == "policy"

    @property
    def generation_cache(self) -> int:
        """Bytes of the KV cache while the objective generates completions (0 if it does not,
        ``generation_steps`` 0): keys and values of every layer for ``seq_len`` tokens of the
        generation batch (``batch_size`` × ``generation_steps`` sequences), in the compute
        precision. Generation runs without gradients, between training steps: the step's
        peak holds the larger of this and the training activations."""
        steps = int(self.objective.generation_steps)
        if steps <= 0:
            return 0
        shape = self.shape
        sequences = self.batch_size * steps
        return (
            2
            * shape.layers
            * shape.kv_dim
            * self.seq_len
            * sequences
            * self.precision.compute_bytes
        )

    def activations(self, *, precision: Precision | None = None, **method: Any) -> tuple[int, int]:
        """Activation bytes of this step without and with checkpointing, in :attr:`precision`
        unless the method computes in another one (``precision``), for :attr:`sequences`
        sequences, or the generation batch's KV cache when that is larger
        (:attr:`generation_cache`). ``method``: the method's keywords of
        :func:`~ftx.estimates.activations.activation_bytes` (``layers_with_grad``,
        ``head_trainable``, optional ``extra``)."""
        full, checkpointed = activation_pair(
            self.shape, precision=precision or self.precision, **self._step, **method
        )
        cache = self.generation_cache
        return max(full, cache), max(checkpointed, cache)

    def dense(self, **method: Any) -> MemoryEstimate:
        """:func:`~ftx.estimates.memory.estimate_dense` for this request's model and step
        (:attr:`sequences` sequences), plus a frozen reference copy of the weights when the
        objective needs a reference model; ``method``: its method keywords
        (``trainable_params``, ``trainable_linear_params``, ``layers_with_grad``,
        ``head_trainable``, optional ``notes``)."""
        result = estimate_dense(
            self.shape, precision=self.precision, optim=self.optim, **self._step, **method
        )
        cache = self.generation_cache
        if cache:
            generated = self.batch_size * self.objective.generation_steps
            result = replace(
                result,
                activations=max(result.activations, cache),
                activations_checkpointed=max(result.activations_checkpointed, cache),
                notes=[
                    *result.notes,
                    f"generation: the KV cache of {generated} sequences (counted where it "
                    "exceeds the training activations)",
                ],
            )
        if self.reference_copy:
            result = replace(
                result,
                reference=self.shape.total_params() * self.precision.weight_bytes,
                notes=[
                    *result.notes,
                    "reference: a frozen copy of the weights (none if the objective "
                    "precomputes reference log-probabilities)",
                ],
            )
        return result

    @property
    def _step(self) -> dict[str, Any]:
        """The step's keywords that every estimate helper takes the same way."""
        return {
            "seq_len": self.seq_len,
            "batch_size": self.sequences,
            "device_kind": self.device.kind,
        }


Estimate = Callable[[EstimateRequest], "MemoryEstimate | None"]
HookArguments = Callable[..., "MemoryEstimate | None"]


def estimator(fn: Estimate) -> HookArguments:
    """Make ``fn(request)`` callable with the hook's arguments, positional or by name:
    ``(model_config, seq_len, batch_size, options, device, dtype, objective=None,
    optim=None)`` (``objective`` ``None``: supervised's traits). The result keeps ``fn``'s name and
    docstring; ``fn`` stays reachable as ``.estimate``."""

    def from_hook_arguments(
        model_config: Any,
        seq_len: int,
        batch_size: int,
        options: Mapping[str, Any],
        device: DeviceInfo,
        dtype: str,
        objective: ObjectiveTraits | None = None,
        optim: str | None = None,
    ) -> MemoryEstimate | None:
        traits = ObjectiveTraits() if objective is None else objective
        return fn(
            EstimateRequest(
                model_config, seq_len, batch_size, options, device, dtype, traits, optim
            )
        )

    from_hook_arguments.__name__ = getattr(fn, "__name__", "estimate")
    from_hook_arguments.__qualname__ = getattr(fn, "__qualname__", "estimate")
    from_hook_arguments.__doc__ = fn.__doc__
    from_hook_arguments.__module__ = fn.__module__
    from_hook_arguments.estimate = fn  # type: ignore[attr-defined]
    return from_hook_arguments
