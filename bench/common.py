"""Shared helpers for the scripts in ``bench/``: child processes, scoring, tables, results.

Every contender runs in its own child process. :func:`run_child` waits for it with
``os.wait4``, which returns the resource usage of *that* child alone: its peak resident memory
(``ru_maxrss``) and CPU time, next to the wall time measured here. Scoring always goes through
the same code path, ``ftx eval DIR --data HELDOUT --metric exact`` (:func:`ftx_eval`), whatever
tool trained the model.

This module imports nothing heavy; the scripts run with the main venv's Python.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
MAIN_PY = Path(sys.executable)
FTX = [str(MAIN_PY), "-m", "ftx.cli"]
LF_VENV = BENCH / ".venv-llamafactory"
USER_OMP_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")
"""The user's own setting, read before this process imports ftx (whose import may set the
variable, ftx/openmp.py): children get the user's environment, not this process's choice."""

# Tokenizer/template files copied next to every trained model before scoring, so that every
# contender is scored with the base model's own tokenizer and chat template.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
)
MODEL_FILES = ("config.json", "generation_config.json", "adapter_config.json")


def bench_parser(doc: str, *, quick: str, ignore: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """The parser every bench script starts from: the first line of its docstring ``doc`` as the
    description, ``--quick`` (``quick`` says what it shrinks to) and, hidden, the int flags in
    ``ignore``: other bench scripts' options (``steps``, ``batch``, ``eval-limit``) that do not
    apply to this one, accepted so that one command line can drive them all."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick)
    for flag in ignore:
        parser.add_argument(f"--{flag}", type=int, help=argparse.SUPPRESS)
    return parser


def log(message: str) -> None:
    """Progress line on stderr with a timestamp (the tables go to stdout)."""
    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    """The 1/5/15-minute load averages (other processes sharing the CPU show up here)."""
    return [round(x, 2) for x in os.getloadavg()]


def run_child(
    cmd: list[str],
    *,
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run ``cmd``; return wall time, exit code, the child's own peak RSS and CPU seconds.

    stdout and stderr go to ``log_path``. ``env`` entries are added to this process's
    environment (a value of ``""`` removes the variable).
    """
    child_env = dict(os.environ)
    if USER_OMP_WAIT_POLICY is None:
        child_env.pop("OMP_WAIT_POLICY", None)
    for key, value in (env or {}).items():
        if value == "":
            child_env.pop(key, None)
        else:
            child_env[key] = value
    log_path.parent.mkdir(parents=True, exist_ok=True)
    load_before = loadavg()
    with log_path.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=child_env, cwd=cwd)
        deadline = None if timeout is None else start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "cmd": cmd,
        "rc": proc.returncode,
        "wall_s": round(wall, 3),
        "peak_rss_bytes": usage.ru_maxrss * 1024,
        "cpu_user_s": round(usage.ru_utime, 2),
        "cpu_sys_s": round(usage.ru_stime, 2),
        "minor_page_faults": usage.ru_minflt,
        "context_switches": usage.ru_nvcsw + usage.ru_nivcsw,
        "load_before": load_before,
        "load_after": loadavg(),
        "log": str(log_path),
    }


def ftx_run_command(
    plugin: str, *, model: Path, data: Path, out: Path, steps: int, batch: int, sets: list[str]
) -> list[str]:
    """``ftx run`` of ``plugin`` for ``steps`` steps of ``batch`` rows into ``out`` (replaced),
    with ``--set`` for each of ``sets``."""
    from ftx.testing.commands import run_argv

    train = {"max_steps": steps, "per_device_train_batch_size": batch}
    argv = run_argv(plugin, model=model, data=data, output=out, train=train, sets=sets)
    return [*FTX, *argv, "--overwrite"]


def require_ok(result: dict[str, Any], what: str) -> None:
    """Exit with the tail of the child's log if it failed."""
    if result["rc"] != 0:
        tail = Path(result["log"]).read_text(errors="replace").splitlines()[-30:]
        head = f"{what} failed (exit {result['rc']}); last lines of {result['log']}:"
        sys.exit("\n".join([head, *tail]))


def demo_model() -> Path:
    """The cached SmolLM2 safetensors directory (converted from the GGUF once)."""
    from ftx.models import resolve_model

    return Path(resolve_model(None))


def demo_data() -> tuple[Path, Path]:
    from ftx.data import demo_data_paths

    train, heldout = demo_data_paths()
    return Path(train), Path(heldout)


def write_subset(source: Path, rows: int, target: Path) -> Path:
    """The first ``rows`` lines of a JSONL file (a fixed training subset: one epoch of it is
    exactly ``steps * batch`` rows, so every tool trains on the same rows once)."""
    lines = source.read_text().splitlines(keepends=True)
    if rows > len(lines):
        sys.exit(f"{source} has {len(lines)} rows; {rows} were asked for")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(lines[:rows]))
    return target


def count_tokens(data: Path, model: Path, *, template: str = "auto") -> dict[str, Any]:
    """Tokens of every row of ``data`` rendered with the model's chat template (the number
    every contender trains on: same rows, same template), and trained (assistant) tokens."""
    from ftx.data import load_conversations, tokenize_dataset
    from ftx.models import load_tokenizer

    tokenizer = load_tokenizer(model)
    tok = tokenize_dataset(
        load_conversations(str(data)), tokenizer, max_length=4096, template=template
    )
    lengths = [len(e["input_ids"]) for e in tok.examples]
    return {
        "rows": len(lengths),
        "tokens": sum(lengths),
        "assistant_tokens": tok.stats["trained_tokens"],
        "mean_length": round(statistics.mean(lengths), 1),
        "max_length": max(lengths),
    }


def scoring_dir(trained: Path, base_model: Path, target: Path) -> Path:
    """A directory with ``trained``'s weights (full model or PEFT adapter) and the *base*
    model's tokenizer files, so every contender is scored with identical prompts.

    A PEFT adapter's ``base_model_name_or_path`` is pointed at ``base_model``.
    """
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for item in trained.iterdir():
        weights = item.suffix == ".safetensors" or item.name.endswith(".safetensors.index.json")
        if item.is_file() and (weights or item.name in MODEL_FILES):
            os.symlink(item.resolve(), target / item.name)
    for name in TOKENIZER_FILES:
        if (base_model / name).is_file():
            shutil.copy(base_model / name, target / name)
    adapter_config = target / "adapter_config.json"
    if adapter_config.exists():
        config = json.loads(adapter_config.read_text())
        config["base_model_name_or_path"] = str(base_model)
        adapter_config.unlink()
        adapter_config.write_text(json.dumps(config, indent=2))
    return target


def ftx_eval(model_dir: Path, heldout: Path, limit: int | None, log_path: Path) -> dict[str, Any]:
    """``ftx eval MODEL_DIR --data HELDOUT --metric exact [--limit K]`` in a child process."""
    cmd = [*FTX, "eval", str(model_dir), "--data", str(heldout), "--metric", "exact"]
    if limit:
        cmd += ["--limit", str(limit)]
    result = run_child(cmd, log_path=log_path)
    require_ok(result, f"ftx eval {model_dir}")
    for line in reversed(Path(log_path).read_text().splitlines()):
        if line.startswith("{"):
            scored = json.loads(line)
            return {
                "score": scored["score"],
                "correct": scored.get("correct"),
                "n": scored["n"],
                "eval_wall_s": result["wall_s"],
            }
    sys.exit(f"ftx eval {model_dir}: no JSON result in {log_path}")


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def trainer_runtime(state_or_results: Path) -> dict[str, Any]:
    """``train_runtime`` (s) and the tokens a HF Trainer reported, from ``trainer_state.json``
    (``log_history``) or LLaMA-Factory's ``all_results.json``."""
    data = read_json(state_or_results)
    out: dict[str, Any] = {}
    rows = data.get("log_history", [data])
    for row in rows:
        if "train_runtime" in row:
            out["train_runtime_s"] = row["train_runtime"]
        for key in ("num_tokens", "num_input_tokens_seen"):
            if key in row:
                out["reported_tokens"] = int(row[key])
    if "num_input_tokens_seen" in data:
        out["reported_tokens"] = int(data["num_input_tokens_seen"])
    return out


def package_versions(python: Path, dists: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of ``dists`` in the environment of ``python``."""
    code = (
        "import json, importlib.metadata as m\n"
        "out = {}\n"
        f"for d in {list(dists)!r}:\n"
        "    try: out[d] = m.version(d)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}


MAIN_DISTS = ("ftx-core", "torch", "transformers", "trl", "peft", "accelerate", "bitsandbytes")


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python: what the figures were measured on."""
    from ftx.calibration import cpu_identity  # the CPU as ftx's calibration keys it

    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version()}
    cpu = cpu_identity()
    info.update(
        {"Model name": cpu["model_name"], "CPU family": cpu["family"], "Model": cpu["model"]}
    )
    for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16"):  # "AMD EPYC" alone is 3 CPUs
        info[flag] = flag in cpu["flags"]
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        info["mem_total_gib"] = round(int(meminfo[0].split()[1]) / 2**20, 1)
    except (OSError, IndexError, ValueError):
        pass
    info["cores"] = os.cpu_count()
    return info


def cpu_label(info: dict[str, Any] | None = None) -> str:
    """The CPU as figures name it: model name, family/model and the matmul-relevant flags
    (``AMD EPYC`` alone has named three different processors on these machines)."""
    info = info or machine()
    flags = [f for f in ("avx512f", "avx512_bf16", "amx_bf16") if info.get(f)]
    flags = flags or ["avx2" if info.get("avx2") else "no AVX2"]
    return (
        f"{info.get('Model name', 'unknown CPU')} (family {info.get('CPU family')} model "
        f"{info.get('Model')}; {', '.join(flags)}), {info.get('cores')} cores"
    )


def save_results(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` (the latest run of that script) and say where.
    ``versions`` defaults to the main venv's ftx/TRL/PEFT/torch stack."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "bench": name,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        **payload,
    }
    payload.setdefault("versions", package_versions(MAIN_PY, MAIN_DISTS))
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    log(f"results: {path}")
    return path


def fmt_bytes(value: float | None) -> str:
    return "–" if value is None else f"{value / 2**30:.2f} GiB"


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` rounded, or None if either is missing or b is 0."""
    if a is None or b in (None, 0):
        return None
    return round(a / b, 3)


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A GitHub markdown table (printed by every script and pasted into BENCHMARKS.md)."""

    def cell(value: Any) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def workdir(name: str, keep: str | None) -> Path:
    """Scratch directory for one bench run (``--workdir`` or a fresh one under /tmp, removed
    by :func:`cleanup` at the end)."""
    if keep:
        path = Path(keep)
        path.mkdir(parents=True, exist_ok=True)
        return path.resolve()
    import tempfile

    return Path(tempfile.mkdtemp(prefix=f"ftx-bench-{name}-"))


def prune_checkpoints(run_dir: Path) -> None:
    """Delete the Trainer checkpoints under ``run_dir`` (1.6 GB for a full fine-tune of SmolLM2,
    weights + optimizer); nothing the benchmarks read is in them."""
    for ckpt in Path(run_dir).rglob("checkpoint-*"):
        if ckpt.is_dir():
            shutil.rmtree(ckpt, ignore_errors=True)


def cleanup(work: Path, keep: str | None) -> None:
    """Remove a fresh scratch directory; one given with ``--workdir`` stays (without
    checkpoints)."""
    if keep:
        prune_checkpoints(work)
    else:
        shutil.rmtree(work, ignore_errors=True)
