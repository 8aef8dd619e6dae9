"""The objects the host hands to hooks: `RunContext` and `DeviceInfo` (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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


@dataclass
class RunContext:
    """Everything a hook needs about the run in progress.

    ``config`` is the fully resolved config (sections ``model``, ``data``, ``train``, ``method``),
    ``options`` the selected plugin's validated options (``config["method"]`` with defaults
    filled in), ``train_args`` the keyword arguments for ``SFTConfig``, ``model_path`` a local
    Hugging Face model directory, ``output_dir`` the run directory. Plugins may keep private
    state for later hooks in ``state``.
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
    console: Any = None

    def log(self, message: str) -> None:
        """Print a line to the run's console (stderr), or nowhere if there is none."""
        if self.console is not None:
            self.console.print(message)

    @property
    def is_main_process(self) -> bool:
        """True on rank 0 (or when not distributed): only it writes files and logs."""
        from ftx.ranks import is_main_process

        return is_main_process()
