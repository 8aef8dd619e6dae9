"""Slow tier: exported GGUF files run in llama.cpp itself (``llama-cpp-python``, built from
source by ``make test``: ``make llama-cpp``).

Tiny random models of every architecture and tokenizer kind ftx exports (llama with a
byte-level BPE tokenizer, llama with a Llama 2-style SentencePiece tokenizer, qwen2, qwen3),
each exported to f32 and f16: llama.cpp's logits and greedy tokens equal transformers' on a few
prompts, and llama.cpp tokenises text as the Hugging Face tokenizer does. Seconds per model.

Then the real SmolLM2: the shared demo QLoRA run (``demo_qlora_run``, tests/conftest.py:
``export.gguf: f16`` writes the GGUF at the end of the run), then ``ftx export --format gguf
--quant q8_0``; both files are loaded by llama.cpp and greedily complete the held-out prompts.
Checked: the f16 file gives ``ftx generate``'s outputs (the count that differ is printed),
q8_0's held-out exact match is within 0.05 of the merged model's, and every generation stops by
itself at the end-of-turn token.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

MAX_NEW_TOKENS = 64


def ftx(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ftx.cli", *args], capture_output=True, text=True, timeout=3600
    )


@pytest.fixture(scope="module")
def llama_cpp():
    try:
        import llama_cpp
    except ImportError:
        pytest.skip(
            "llama-cpp-python is not installed: make llama-cpp (CMAKE_ARGS='-DGGML_NATIVE=OFF "
            "-DLLAVA_BUILD=OFF' pip install llama-cpp-python)"
        )
    return llama_cpp


@pytest.fixture(scope="module")
def exported(demo_qlora_run):
    """The shared demo QLoRA run (tests/conftest.py) with its f16 GGUF, plus a q8_0 export;
    sizes and times printed."""
    run = demo_qlora_run
    started = time.perf_counter()
    r = ftx("export", str(run), "--format", "gguf", "--quant", "q8_0", "--overwrite")
    assert r.returncode == 0, r.stderr[-3000:]
    seconds = time.perf_counter() - started
    files = {"f16": run / "export-gguf-f16" / "qlora-f16.gguf", "q8_0": Path(r.stdout.strip())}
    for quant, path in files.items():
        print(f"{quant}: {path.stat().st_size / 2**20:.1f} MiB")
    print(f"ftx export --format gguf --quant q8_0: {seconds:.1f} s (process included)")
    return run, files


TINY_PROMPTS = (
    "the quick brown fox",
    "hello world: the answer is",
    "json name value true",
    "<|im_start|>user\nwhat is the answer<|im_end|>\n",
)
TINY_NEW_TOKENS = 16
TINY_ATOL = {"f32": 1e-3, "f16": 5e-3}
"""Logit tolerances: what llama.cpp's own kernels (and f16 weights) add to transformers'."""


@pytest.mark.parametrize("name", ["llama", "llama-spm", "qwen2", "qwen3"])
def test_llama_cpp_runs_tiny_exports_like_transformers(
    llama_cpp, ftx_cli, tiny_arch_model, tmp_path, name
):
    """llama (byte-level BPE), llama (SentencePiece), qwen2, qwen3: same logits and greedy
    tokens in llama.cpp as in transformers, f32 and f16; the same tokenisation."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    from ftx.models import load_tokenizer
    from tests.test_gguf_export import _as_run, _export, _strings

    model_type, tokenizer_kind = {"llama-spm": ("llama", "sentencepiece")}.get(
        name, (name, "byte-level")
    )
    run = _as_run(tiny_arch_model(model_type, tokenizer_kind), tmp_path)
    tokenizer = load_tokenizer(run / "model")
    hf = AutoModelForCausalLM.from_pretrained(str(run / "model"), dtype=torch.float32)
    prompts = [tokenizer(p)["input_ids"] for p in TINY_PROMPTS]
    want = []
    with torch.no_grad():
        for ids in prompts:
            logits = hf(torch.tensor([ids])).logits[0].numpy()
            out = hf.generate(torch.tensor([ids]), max_new_tokens=TINY_NEW_TOKENS, do_sample=False)
            want.append((logits, out[0, len(ids) :].tolist()))
    for quant in ("f32", "f16"):
        path = _export(ftx_cli, run, "--quant", quant)
        llm = llama_cpp.Llama(
            model_path=str(path), n_ctx=512, n_threads=2, seed=0, verbose=False, logits_all=True
        )
        try:
            for ids, (logits, tokens) in zip(prompts, want, strict=True):
                llm.reset()
                llm.eval(ids)
                got = np.asarray(llm.scores[: len(ids)])
                assert np.abs(got - logits).max() <= TINY_ATOL[quant], (name, quant, ids)
                llm.reset()
                greedy = []
                for token in llm.generate(ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0):
                    greedy.append(token)
                    if len(greedy) == len(tokens) or token == llm.token_eos():
                        break
                assert greedy == tokens[: len(greedy)] and len(greedy) == len(tokens), (
                    name,
                    quant,
                    greedy,
                    tokens,
                )
            if quant == "f32":
                _check_tokenisation(
                    llm, tokenizer, _strings(300), sentencepiece=name == "llama-spm"
                )
        finally:
            llm.close()


def _check_tokenisation(llm, tokenizer, strings: list[str], *, sentencepiece: bool) -> None:
    """llama.cpp's tokens for each string (special tokens parsed, as transformers does) equal
    the Hugging Face tokenizer's. One known difference for SentencePiece: llama.cpp puts the
    ``"▁"`` prefix before text that already starts with a space (as SentencePiece does);
    transformers' Metaspace does not: such text has exactly one more ``"▁"`` at the start."""
    space = tokenizer.convert_tokens_to_ids("\u2581") if sentencepiece else None
    leading = 0
    for text in strings:
        got = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        want = tokenizer(text, add_special_tokens=False)["input_ids"]
        if sentencepiece and text.startswith(" "):
            leading += 1
            want = [space, *want]
        assert got == want, text
    print(f"{len(strings)} strings tokenised alike ({leading} with llama.cpp's extra prefix)")


def _held_out(run: Path) -> list[dict]:
    """``ftx generate``'s rows (prompt text, output, reference) for the held-out prompts."""
    from ftx.data import demo_data_paths

    data = demo_data_paths()[1]
    held_out = json.loads((run / "summary.json").read_text())["eval_after"]["n"]
    r = ftx("generate", str(run), "--data", str(data), "--limit", str(held_out))
    assert r.returncode == 0, r.stderr[-3000:]
    return [json.loads(line) for line in r.stdout.splitlines()]


def _complete(llama_cpp, path: Path, prompts: list[str]) -> list[dict]:
    """Greedy completions in llama.cpp: text, why it stopped, and the prompt's token ids."""
    llm = llama_cpp.Llama(
        model_path=str(path), n_ctx=512, n_threads=2, seed=0, verbose=False, logits_all=False
    )
    out = []
    for prompt in prompts:
        ids = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        done = llm.create_completion(
            ids, max_tokens=MAX_NEW_TOKENS, temperature=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0
        )
        choice = done["choices"][0]
        out.append({"text": choice["text"], "finish": choice["finish_reason"], "ids": ids})
    return out


def test_llama_cpp_runs_the_export_like_ftx(llama_cpp, exported):
    from ftx.evaluate import exact_match
    from ftx.models import load_tokenizer

    run, files = exported
    rows = _held_out(run)
    prompts = [row["prompt"] for row in rows]
    tokenizer = load_tokenizer(run / "model")
    summary = json.loads((run / "summary.json").read_text())
    merged_score = summary["eval_after"]["score"]
    results = {quant: _complete(llama_cpp, path, prompts) for quant, path in files.items()}

    differ_ids = sum(
        r["ids"] != tokenizer(p, add_special_tokens=False)["input_ids"]
        for r, p in zip(results["f16"], prompts, strict=True)
    )
    table = {"merged (ftx)": merged_score}
    for quant, done in results.items():
        hits = sum(
            exact_match(d["text"], row["reference"]) for d, row in zip(done, rows, strict=True)
        )
        table[f"{quant} (llama.cpp)"] = hits / len(rows)
    differ = sum(
        d["text"].strip() != row["output"].strip()
        for d, row in zip(results["f16"], rows, strict=True)
    )
    print(f"held-out exact match (n={len(rows)}): {json.dumps(table)}")
    print(f"f16 in llama.cpp vs ftx generate: {differ} of {len(rows)} outputs differ")
    print(f"prompts llama.cpp tokenises differently from ftx: {differ_ids} of {len(rows)}")
    stops = {q: sum(d["finish"] == "stop" for d in done) for q, done in results.items()}
    print(f"generations that stopped by themselves: {stops}")

    assert all(count == len(rows) for count in stops.values()), stops
    assert differ <= len(rows) // 10, f"{differ} of {len(rows)} greedy outputs differ"
    assert abs(table["q8_0 (llama.cpp)"] - merged_score) <= 0.05, table
    assert merged_score >= 0.6  # the fine-tune is there to be kept
