"""What the Python API returns: a run (:class:`RunResult`), a comparison (:class:`CompareResult`).

Both read the run directory, which stays the single source of truth (``summary.json``,
``metrics.jsonl``, ``model/``, ``adapter/``): a result built later from a directory is the same
as the one :func:`ftx.run` returned. Using the model (``generate``, ``chat``, ``eval``,
``export``) calls what ``ftx generate/chat/eval/export`` call; the model is loaded once, on the
first use, and kept. Importing this module imports nothing heavy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftx.errors import BadInput


@dataclass
class RunResult:
    """A run directory, read: ``status``, ``summary``, ``model_dir``, ``adapter_dir``,
    ``eval_before``/``eval_after``, ``forgetting``, ``loss_history``, ``eval_history``;
    ``generate``, ``chat``, ``eval``, ``export`` use the trained ``model/``."""

    output: Path
    _loaded: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.output = Path(self.output)

    @property
    def summary(self) -> dict[str, Any]:
        """``summary.json`` as it is now (empty if the run wrote none)."""
        try:
            return json.loads((self.output / "summary.json").read_text())
        except (OSError, ValueError):
            return {}

    @property
    def status(self) -> str | None:
        """``finished``, ``interrupted``, ``failed`` or ``running``; None where the directory
        holds no ``summary.json`` (a compare cell not started yet, or no run at all: building a
        result checks nothing, so that a comparison can list the runs it has still to do)."""
        return self.summary.get("status")

    @property
    def model_dir(self) -> Path | None:
        """``model/``: what ``AutoModelForCausalLM.from_pretrained`` loads (finished runs)."""
        path = self.output / "model"
        return path if path.is_dir() else None

    @property
    def adapter_dir(self) -> Path | None:
        """``adapter/`` for adapter methods (qlora, ia3, …), else None."""
        path = self.output / "adapter"
        return path if path.is_dir() else None

    @property
    def eval_before(self) -> dict[str, Any] | None:
        """The base model's held-out score (``metric``, ``score``, ``n``, …)."""
        return self.summary.get("eval_before")

    @property
    def eval_after(self) -> dict[str, Any] | None:
        """The trained model's held-out score."""
        return self.summary.get("eval_after")

    @property
    def forgetting(self) -> dict[str, Any] | None:
        """What the trained model kept of its base (``data.eval_forgetting``): ``retention``,
        ``retention_kept``, ``retention_base_correct``, ``questions``, ``drift_nats``,
        ``drift_tokens``, ``seconds``; None when the run did not measure it."""
        return self.summary.get("forgetting")

    @property
    def loss_history(self) -> list[dict[str, Any]]:
        """One dict per logged training step (``step``, ``loss``, ``learning_rate``, …): the
        training lines of metrics.jsonl."""
        from ftx.report import is_training_row, read_metrics

        return [row for row in read_metrics(self.output) if is_training_row(row)]

    @property
    def eval_history(self) -> list[dict[str, Any]]:
        """One dict per evaluation during training (``step``, ``eval_loss``; ``eval_exact``
        with ``eval_exact_seconds`` … where the task metric was scored): the evaluation lines
        of metrics.jsonl."""
        from ftx.report import is_training_row, read_metrics

        return [row for row in read_metrics(self.output) if not is_training_row(row)]

    def loss_frame(self) -> Any:
        """:attr:`loss_history` as a pandas DataFrame indexed by step (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise BadInput(
                "loss_frame() needs pandas", hint="pip install pandas (or use loss_history)"
            ) from None
        return pd.DataFrame(self.loss_history).set_index("step")

    def checkpoint_note(self) -> str:
        from ftx.runner.checkpoints import newest_checkpoint

        checkpoint = newest_checkpoint(self.output / "checkpoints")
        return "no checkpoint yet" if checkpoint is None else f"{checkpoint.name} saved"

    def _model(self) -> Any:
        if self._loaded is None:
            from ftx.inference import load_for_inference, resolve_artifact

            resolve_artifact(self.output)  # BadInput for a run without model/
            self._loaded = load_for_inference(self.output)
        return self._loaded

    def generate(
        self,
        data: str | Path,
        *,
        max_new_tokens: int = 64,
        limit: int | None = None,
        fmt: str = "auto",
    ) -> list[dict[str, Any]]:
        """``ftx generate``: the last assistant turn of every conversation in ``data``
        (rows of ``id``, ``prompt``, ``output``, ``reference``; greedy)."""
        from ftx.evaluate import generations, load_eval_rows
        from ftx.inference import check_generation_settings

        check_generation_settings(max_new_tokens)
        convs = load_eval_rows(str(data), fmt, limit)
        loaded = self._model()
        return generations(loaded.model, loaded.tokenizer, convs, max_new_tokens=max_new_tokens)

    def chat(
        self,
        message: str | list[dict[str, str]],
        *,
        system: str | None = None,
        max_new_tokens: int = 128,
    ) -> str:
        """One reply of the trained model to ``message`` (a user turn, or a whole message list
        ending with a user turn), rendered as in training and as ``ftx chat`` does; greedy."""
        from ftx.chat import prompt_ids
        from ftx.inference import check_generation_settings, generate

        if not isinstance(message, (str, list)):
            raise BadInput(
                f"chat() takes a message (a string) or a list of messages, not "
                f"{type(message).__name__}",
                hint='e.g. run.chat("Hello") or run.chat([{"role": "user", "content": "Hello"}])',
            )
        check_generation_settings(max_new_tokens)
        messages = [{"role": "user", "content": message}] if isinstance(message, str) else message
        if system:
            messages = [{"role": "system", "content": system}, *messages]
        loaded = self._model()
        ids = prompt_ids(list(messages), loaded.tokenizer)
        (reply,) = generate(loaded.model, loaded.tokenizer, [ids], max_new_tokens=max_new_tokens)
        return reply.strip()

    def eval(
        self,
        data: str | Path | None = None,
        *,
        metric: str = "exact",
        max_new_tokens: int = 64,
        limit: int | None = None,
        fmt: str = "auto",
        base: str | Path | None = None,
    ) -> dict[str, Any]:
        """``ftx eval``: ``{"metric", "score", "n", …}`` of the trained model on ``data``, or,
        with ``metric="retention"`` or ``"drift"`` (no ``data``), its forgetting against the
        run's base model (or ``base``)."""
        from ftx.forgetting.measure import METRICS as FORGETTING

        if metric in FORGETTING:
            from ftx.forgetting.evaluation import forgetting_evaluation

            if data is not None:
                raise BadInput(f"data= does not apply to metric={metric!r}", hint="drop data=")
            base_spec = None if base is None else str(base)
            return forgetting_evaluation(self.output, metric, base_spec, load=self._model)
        if data is None:
            raise BadInput(f"metric={metric!r} needs data= (the held-out file to score)")
        from ftx.evaluate import evaluation

        return evaluation(self._model, str(data), metric, max_new_tokens, fmt, limit)

    def export(
        self,
        format: str = "full",
        *,
        dtype: str | None = None,
        quant: str | None = None,
        out: str | Path | None = None,
        overwrite: bool = False,
    ) -> Path:
        """``ftx export``: (re)write the run's model as ``full``, ``merged`` or ``adapter``
        (``dtype`` fp32/bf16/fp16; None keeps the run's own) into ``out`` (default
        ``RUN/export-FORMAT[-DTYPE]``), or as ``gguf`` (``quant``, default f16) into the
        ``.gguf`` file ``out`` (default ``RUN/export-gguf-QUANT/RUNNAME-QUANT.gguf``), with an
        Ollama Modelfile beside it. Returns what was written."""
        from ftx.artifact_formats import export_artifact

        target = Path(out) if out else None
        return export_artifact(
            self.output, format, dtype=dtype, quant=quant, out=target, overwrite=overwrite
        )

    def _repr_markdown_(self) -> str:
        """Jupyter shows a finished run as its ``report.md``."""
        report = self.output / "report.md"
        return report.read_text() if report.is_file() else f"ftx run {self.output}"


@dataclass
class CompareResult:
    """An ``ftx compare`` directory: ``rows`` (one dict per run, the report's numbers),
    ``runs`` (a :class:`RunResult` per run, keyed by its directory under the compare's:
    ``"fft"``, ``"qlora/r=8"``), ``report`` (``compare.md``), ``html``, ``best()``."""

    output: Path

    def __post_init__(self) -> None:
        self.output = Path(self.output)

    @property
    def cells(self) -> list[dict[str, Any]]:
        """``compare.json``'s cells (``name``, ``plugin``, ``group``, ``grid``, ``seed``)."""
        from ftx.compare_dir import read_spec

        return list((read_spec(self.output) or {}).get("cells", []))

    @property
    def rows(self) -> list[dict[str, Any]]:
        from ftx.compare_report import cell_row

        return [cell_row(cell, self.output / cell["name"]) for cell in self.cells]

    @property
    def runs(self) -> dict[str, RunResult]:
        return {cell["name"]: RunResult(self.output / cell["name"]) for cell in self.cells}

    @property
    def report(self) -> Path:
        return self.output / "compare.md"

    @property
    def html(self) -> Path:
        return self.output / "compare.html"

    def best(self) -> RunResult:
        """The finished run with the best held-out score after training: the highest, or the
        lowest for the ``loss`` metric (ties: the first)."""
        scored = [r for r in self.rows if r["status"] == "finished" and r["after"] is not None]
        if not scored:
            raise BadInput(f"{self.output}: no finished run has a held-out score")
        sign = -1 if scored[0]["metric"] == "loss" else 1
        return self.runs[max(scored, key=lambda r: sign * r["after"])["name"]]

    def frame(self) -> Any:
        """:attr:`rows` as a pandas DataFrame indexed by method (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.rows).set_index("name")

    def _repr_markdown_(self) -> str:
        return self.report.read_text() if self.report.is_file() else str(self.output)
