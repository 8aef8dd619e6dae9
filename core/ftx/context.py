"""The objects the host hands to hooks: `RunContext`, `DeviceInfo`, `ObjectiveTraits` (no heavy
imports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(frozen=True)
class DeviceInfo:
    """Where training runs: ``kind`` is ``"cuda"``, ``"mps"`` or ``"cpu"``.

    ``bf16`` says whether bf16 compute is supported (CUDA compute capability ≥ 8, or a CPU with
    AVX512-BF16/AMX); ``count`` is the number of accelerators (0 on CPU); ``name`` is for humans.
    """

    kind: str
    bf16: bool
    count: int
    name: str

    @property
    def is_gpu(self) -> bool:
        return self.kind in {"cuda", "mps"}


@dataclass(frozen=True)
class ObjectiveTraits:
    """What the host, ``ftx plan`` and ``ftx compare`` need to know about an objective, cheaply
    (the ``objective_traits`` hook).

    * ``metrics``: the held-out metrics it scores with (``data.eval_metric``), the default first
      (``("exact", "json", "loss")`` for supervised, ``("pairwise",)`` for preference tuning);
    * ``sequences_per_row``: sequences the trainer runs through the model per data row (2 for
      a chosen/rejected pair), for the memory estimate;
    * ``reference``: ``"none"`` (reference-free: supervised, ORPO, SimPO) or ``"policy"`` (a
      reference model: the model with its adapters disabled for adapter methods, else a frozen
      copy or precomputed log-probabilities);
    * ``min_batch_size``: the smallest ``train.per_device_train_batch_size`` it works with
      (KTO needs 2);
    * ``data``: what its rows are, for humans and ``ftx data check`` (``"conversations"``,
      ``"preference pairs"``, ``"labelled completions"``, ``"prompts"``);
    * ``generation_steps``: 0 for an objective that does not generate while training; else
      how many steps' rows it generates completions for at once (GRPO: ``steps_per_generation``,
      by default the gradient accumulation): ``ftx plan`` counts the KV cache of that
      generation batch;
    * ``plan_keys``: the ``train`` keys these traits depend on (``objective_traits``'
      ``train``), which ``ftx plan --set train.KEY=…`` therefore accepts.
    """

    metrics: tuple[str, ...] = ("exact",)
    sequences_per_row: int = 1
    reference: str = "none"
    min_batch_size: int = 1
    data: str = "conversations"
    generation_steps: int = 0
    plan_keys: tuple[str, ...] = ()


@dataclass
class RunContext:
    """Everything a hook needs about the run in progress; the host builds one per process.

    Fields:

    * ``plugin``: the selected method plugin's name (``--plugin``); ``objective``: the selected
      objective's name (``--objective``, ``supervised`` by default);
    * ``config``: the fully resolved config (sections ``model``, ``data``, ``train``,
      ``method``), as written to the run's ``config.yaml``;
    * ``options``: the plugin's validated options (``config["method"]`` with defaults filled in;
      ``"auto"`` values are the plugin's to decide); ``objective_options``: the objective's
      (``config["objective"]``); ``traits``: the objective's :class:`ObjectiveTraits`;
    * ``train_args``: the keyword arguments for the run's arguments class (the objective's:
      ``SFTConfig``, ``DPOConfig`` …),
      already including every ``training_arguments`` override once ``build_trainer`` runs;
    * ``model_path``: a local Hugging Face model directory (GGUF files and the demo are
      converted by the host);
    * ``output_dir``: the run directory (``--output``);
    * ``device``: the :class:`DeviceInfo` training runs on;
    * ``dtype``: the weights dtype the host chose (``"float32"``, ``"bfloat16"``,
      ``"float16"``); ``attn_implementation``: the attention the host chose (``"sdpa"``,
      ``"eager"``, ``"flash_attention_2"``);
    * ``state``: a dict for the plugin's own use between hooks (one run, one process); the key
      ``"summary"`` is the host's (see :meth:`report`);
    * ``console``: the run's console (stderr, silent on every rank but the main one); print
      through :meth:`log` rather than using it directly.
    """

    plugin: str
    config: dict[str, Any]
    options: dict[str, Any]
    train_args: dict[str, Any]
    model_path: Path
    output_dir: Path
    device: DeviceInfo
    dtype: str = "float32"
    attn_implementation: str = "sdpa"
    state: dict[str, Any] = field(default_factory=dict)
    console: Console | None = None
    objective: str = "supervised"
    objective_options: dict[str, Any] = field(default_factory=dict)
    traits: ObjectiveTraits = field(default_factory=ObjectiveTraits)

    def log(self, message: str) -> None:
        """Print a line to the run's console (stderr), on the main process only.

        Nowhere when the run has no console (e.g. a hook called directly in a test). ``message``
        may carry rich markup (``"[yellow]warning:[/] …"``).
        """
        if self.console is not None and self.is_main_process:
            self.console.print(message)

    def report(self, **facts: Any) -> None:
        """Record facts about this run for ``summary.json``: ``run.report(engine="ddp × 2")``.

        Values must be JSON-serialisable. The host merges them into the summary after
        ``trainer_ready`` (before training starts) and again after ``export``, so report from
        any hook; a later report of the same key replaces the earlier. Use keys of your own:
        the host's (``status``, ``hooks``, ``trainable_params`` …) are not for plugins to
        change. Every rank may report; the main process writes the file. Stored in
        ``state["summary"]``.
        """
        self.state.setdefault("summary", {}).update(facts)

    @property
    def is_main_process(self) -> bool:
        """True on rank 0 (or when not distributed): only it writes files and logs
        (:func:`ftx.ranks.is_main_process`)."""
        from ftx.ranks import is_main_process

        return is_main_process()
