"""ftx export --format gguf on tiny random models: read back by transformers (``gguf_file=``)
with the same logits and the same tokenisation, llama.cpp's metadata, quant rules, the Ollama
Modelfile, and bad input (exit 2; a full disk exit 1) that never leaves a half-written file."""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
from pathlib import Path

import pytest

PROMPT = "hello world: the answer is 42, {json} [ok]!"


def _as_run(model: Path, root: Path) -> Path:
    """A finished run directory whose model/ is a copy of ``model`` (what export reads)."""
    import shutil

    run = root / "run"
    shutil.copytree(model, run / "model")
    (run / "summary.json").write_text('{"status": "finished"}')
    return run


@pytest.fixture(scope="module")
def qlora_run(tmp_path_factory, ftx_tiny_model, ftx_tiny_data):
    """A real finished qlora run on the tiny llama (adapter merged into model/)."""
    from click.testing import CliRunner

    from ftx.cli import cli

    out = tmp_path_factory.mktemp("gguf-run") / "qlora"
    args = ["run", "--plugin", "qlora", "--model", str(ftx_tiny_model)]
    args += ["--data", str(ftx_tiny_data["train"]), "--output", str(out)]
    result = CliRunner().invoke(cli, [*args, "--set", "train.max_steps=2"])
    assert result.exit_code == 0, result.output
    return out


def _export(ftx_cli, run: Path, *extra: str) -> Path:
    r = ftx_cli("export", str(run), "--format", "gguf", *extra)
    assert r.exit_code == 0, r.output
    return Path(r.stdout.strip().splitlines()[-1])


def _logits(model_dir: Path, ids, **kwargs):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, **kwargs)
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def _reader(path: Path):
    import gguf

    return gguf.GGUFReader(str(path))


MODELS = {
    "llama": ("llama", "byte-level", "llama", "gpt2", "gpt-2"),
    "qwen2": ("qwen2", "byte-level", "qwen2", "gpt2", "qwen2"),
    "llama-spm": ("llama", "sentencepiece", "llama", "llama", "default"),
    "mistral-spm": ("mistral", "sentencepiece", "llama", "llama", "default"),
}
"""Test model -> (model type, tokenizer kind, GGUF architecture, ``tokenizer.ggml.model``,
``tokenizer.ggml.pre``). ``*-spm``: Llama 2 / Mistral v0.1-style SentencePiece tokenizers."""


def _model(tiny_arch_model, name: str) -> Path:
    model_type, tokenizer = MODELS[name][:2]
    return tiny_arch_model(model_type, tokenizer)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize(("quant", "atol"), [("f32", 1e-5), ("f16", 5e-3)])
def test_transformers_reads_back_the_same_model(
    ftx_cli, tiny_arch_model, tmp_path, name, quant, atol
):
    from ftx.models import load_tokenizer

    run = _as_run(_model(tiny_arch_model, name), tmp_path)
    path = _export(ftx_cli, run, "--quant", quant)
    assert path == run / f"export-gguf-{quant}" / f"run-{quant}.gguf"
    ids = load_tokenizer(run / "model").encode(PROMPT)
    want = _logits(run / "model", ids)
    got = _logits(path.parent, ids, gguf_file=path.name)
    assert (got - want).abs().max().item() <= atol
    fields = _reader(path).fields
    _, _, architecture, model, pre = MODELS[name]
    assert fields["general.architecture"].contents() == architecture
    assert fields["tokenizer.ggml.model"].contents() == model
    assert fields["tokenizer.ggml.pre"].contents() == pre


def _strings(count: int) -> list[str]:
    """Seeded mixes of words, digits, punctuation, whitespace, non-ASCII and special tokens."""
    rng = random.Random(0)
    pieces = [
        "the", "quick", "Brown", "fox", "JSON", "answer", "hello", "world", "42", "3.14159",
        "2026-12-04", "{\"a\": 1}", "[x, y]", "café", "naïve", "Ünïcödé", "日本語", "中文字符",
        "Привет", "мир", "مرحبا", "🙂", "🚀🚀", "ß", "œuvre", "  ", "\n", "\t", "\n\n", "'s",
        "don't", "<|im_start|>", "<|im_end|>", "user", "assistant", "x" * 40, "0000", "-", "…",
    ]  # fmt: skip
    return [
        rng.choice(["", " "]).join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        for _ in range(count)
    ]


@pytest.mark.parametrize("name", ["llama", "qwen2", "llama-spm"])
def test_the_tokenizer_round_trips(ftx_cli, tiny_arch_model, tmp_path, name):
    from transformers import AutoTokenizer

    from ftx.models import load_tokenizer

    run = _as_run(_model(tiny_arch_model, name), tmp_path)
    path = _export(ftx_cli, run, "--quant", "f16")
    want = load_tokenizer(run / "model")
    got = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    strings = _strings(300)
    assert sum(any(ord(c) > 127 for c in s) for s in strings) > 100
    for text in strings:
        assert got.encode(text) == want.encode(text), text
        assert got.decode(got.encode(text)) == want.decode(want.encode(text)), text


def test_the_sentencepiece_vocabulary_is_what_llama_cpp_reads(ftx_cli, tiny_arch_model, tmp_path):
    """Token types, special ids and flags as a Llama 2 GGUF has them, and scores that order the
    merges as ``tokenizer.json`` does (llama.cpp's SentencePiece tokenizer merges by score;
    transformers' GGUF reader rebuilds the merges from the same scores)."""
    import gguf
    from transformers.tokenization_utils_base import generate_merges

    run = _as_run(_model(tiny_arch_model, "llama-spm"), tmp_path)
    path = _export(ftx_cli, run, "--quant", "f16")
    fields = _reader(path).fields
    tokens = fields["tokenizer.ggml.tokens"].contents()
    types = dict(zip(tokens, fields["tokenizer.ggml.token_type"].contents(), strict=True))
    assert tokens[:3] == ["<unk>", "<s>", "</s>"] and tokens[3 + 0x41] == "<0x41>"
    assert types["<unk>"] == gguf.TokenType.UNKNOWN
    assert types["<s>"] == types["</s>"] == gguf.TokenType.CONTROL
    assert types["<0x41>"] == types["<0xFF>"] == gguf.TokenType.BYTE
    assert types["\u2581the"] == gguf.TokenType.NORMAL
    assert fields["tokenizer.ggml.bos_token_id"].contents() == 1
    assert fields["tokenizer.ggml.eos_token_id"].contents() == 2
    assert fields["tokenizer.ggml.unknown_token_id"].contents() == 0
    assert fields["tokenizer.ggml.add_bos_token"].contents() is True
    assert fields["tokenizer.ggml.add_space_prefix"].contents() is True
    assert "tokenizer.ggml.merges" not in fields
    data = json.loads((run / "model" / "tokenizer.json").read_text())
    want = [
        tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in data["model"]["merges"]
    ]
    scores = dict(zip(tokens, fields["tokenizer.ggml.scores"].contents(), strict=True))
    assert generate_merges({t: i for i, t in enumerate(tokens)}, scores) == want
    assert len(want) > 100


def test_sentencepiece_tokenizer_json_shapes():
    """Both spellings of the ``"▁"`` scheme: Metaspace (transformers 5, Mistral) and the
    Prepend/Replace normaliser (older Llama 2 files); byte-level BPE is not SentencePiece."""
    from ftx.gguf_vocab import add_space_prefix, is_sentencepiece_bpe, tokenizer_kind

    bpe = {"type": "BPE", "byte_fallback": True, "merges": []}
    meta = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first"}
    modern = {"model": bpe, "pre_tokenizer": meta}
    legacy = {
        "model": bpe,
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": "\u2581"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
            ],
        },
        "pre_tokenizer": None,
    }
    never = {"model": bpe, "pre_tokenizer": {**meta, "prepend_scheme": "never"}}
    for data in (modern, legacy, never):
        assert is_sentencepiece_bpe(data) and tokenizer_kind(data) == ("llama", "default")
    assert add_space_prefix(modern) and add_space_prefix(legacy) and not add_space_prefix(never)
    no_fallback = {**modern, "model": {**bpe, "byte_fallback": False}}
    assert not is_sentencepiece_bpe(no_fallback)
    byte_level = {"model": {"type": "BPE"}, "pre_tokenizer": {"type": "ByteLevel"}}
    assert tokenizer_kind(byte_level) == ("gpt2", "gpt-2")


def test_a_finished_qlora_run_exports_with_end_of_turn_and_modelfile(ftx_cli, qlora_run):
    from ftx.models import load_tokenizer

    path = _export(ftx_cli, qlora_run, "--quant", "q8_0")
    tok = load_tokenizer(qlora_run / "model")
    fields = _reader(path).fields
    eot = tok.convert_tokens_to_ids("<|im_end|>")
    assert fields["tokenizer.ggml.eot_token_id"].contents() == eot
    assert fields["tokenizer.ggml.eos_token_id"].contents() == tok.eos_token_id
    assert fields["tokenizer.chat_template"].contents() == tok.chat_template
    assert len(fields["tokenizer.ggml.merges"].contents()) > 0
    modelfile = (path.parent / "Modelfile").read_text()
    assert modelfile.startswith(f"FROM ./{path.name}\n")
    assert 'PARAMETER stop "<|im_end|>"' in modelfile
    assert "<|im_start|>{{ .Role }}" in modelfile and "SYSTEM" not in modelfile
    ids = tok.encode(PROMPT)
    want = _logits(qlora_run / "model", ids)
    got = _logits(path.parent, ids, gguf_file=path.name)
    assert (got - want).abs().max().item() < 0.05 * want.abs().max().item()


def test_quant_rules(ftx_cli, tmp_path):
    """q8_0: 2-D tensors whose rows divide into 32 are Q8_0, the others F16, 1-D F32."""
    import gguf

    from ftx.testing.tiny import make_tiny_model

    model = make_tiny_model(tmp_path / "m", hidden_size=48, intermediate_size=64)
    run = _as_run(model, tmp_path)
    path = _export(ftx_cli, run, "--quant", "Q8_0")  # as llama.cpp names it: any case
    assert path.name.endswith("-q8_0.gguf"), path
    types = gguf.GGMLQuantizationType
    seen = {}
    for tensor in _reader(path).tensors:
        shape = tuple(int(d) for d in reversed(tensor.shape.tolist()))  # numpy order
        seen[tensor.name] = tensor.tensor_type
        if len(shape) == 1:
            assert tensor.tensor_type == types.F32, tensor.name
        elif shape[-1] % 32:
            assert tensor.tensor_type == types.F16, tensor.name
        else:
            assert tensor.tensor_type == types.Q8_0, tensor.name
    assert seen["blk.0.ffn_down.weight"] == types.Q8_0  # rows of 64
    assert seen["blk.0.attn_q.weight"] == types.F16  # rows of 48
    assert seen["output_norm.weight"] == types.F32
    assert _reader(path).fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_Q8_0


# -- bad input -----------------------------------------------------------------------------------
def test_bad_input_exits_2_before_writing(ftx_cli, tiny_arch_model, tmp_path):
    run = _as_run(tiny_arch_model("llama"), tmp_path)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "summary.json").write_text('{"status": "interrupted"}')
    r = ftx_cli("export", str(unfinished), "--format", "gguf")
    assert r.exit_code == 2 and "no model/" in r.stderr and "interrupted" in r.stderr
    r = ftx_cli("export", str(run), "--format", "gguf", "--quant", "q4_k_m")
    assert r.exit_code == 2 and "q4_k_m" in r.output
    r = ftx_cli("export", str(run), "--format", "gguf", "--dtype", "bf16")
    assert r.exit_code == 2 and "--dtype does not apply" in r.stderr
    r = ftx_cli("export", str(run), "--format", "gguf", "--out", str(tmp_path / "x.bin"))
    assert r.exit_code == 2 and "must end in .gguf" in r.stderr
    gpt2 = _as_run(tiny_arch_model("gpt2"), tmp_path / "gpt2")
    r = ftx_cli("export", str(gpt2), "--format", "gguf")
    assert r.exit_code == 2 and "'gpt2'" in r.stderr
    message = " ".join(r.stderr.split())
    for model_type in ("llama (", "mistral (", "qwen2 (", "qwen3 ("):
        assert model_type in message, message
    assert not list(tmp_path.rglob("*.gguf"))
    out = tmp_path / "out" / "m.gguf"
    first = _export(ftx_cli, run, "--out", str(out))
    before = first.stat().st_mtime_ns
    again = ftx_cli("export", str(run), "--format", "gguf", "--out", str(out))
    assert again.exit_code == 2 and "--overwrite" in again.stderr
    assert first.stat().st_mtime_ns == before
    assert _export(ftx_cli, run, "--out", str(out), "--overwrite", "--quant", "q4_0") == out


def test_an_unknown_pre_tokenizer_exits_2(ftx_cli, tiny_arch_model, tmp_path):
    run = _as_run(tiny_arch_model("llama"), tmp_path)
    path = run / "model" / "tokenizer.json"
    data = json.loads(path.read_text())
    data["pre_tokenizer"] = {"type": "Whitespace"}
    data["decoder"] = None
    path.write_text(json.dumps(data))
    r = ftx_cli("export", str(run), "--format", "gguf")
    assert r.exit_code == 2 and "not supported" in r.stderr and "byte-level BPE" in r.stderr
    assert "SentencePiece-style BPE" in r.stderr


def test_a_full_disk_exits_1_and_leaves_no_gguf(tiny_arch_model, tmp_path):
    """No file may exceed 32 KiB (RLIMIT_FSIZE, in a child): the write fails half-way."""
    run = _as_run(tiny_arch_model("llama"), tmp_path)
    limit = 32 * 1024

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    script = "from ftx.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", script, "export", str(run), "--format", "gguf", "--quant", "f32"],
        capture_output=True,
        text=True,
        preexec_fn=small_files,
    )
    assert result.returncode == 1, result.stderr
    assert "file too large" in result.stderr and "Traceback" not in result.stderr
    folder = run / "export-gguf-f32"
    assert not list(folder.iterdir())  # neither the .gguf, nor its temporary, nor a Modelfile


def test_generate_and_eval_take_the_exported_file(
    ftx_cli, qlora_run, ftx_tiny_data, tmp_path, monkeypatch
):
    """The same commands score the run and its GGUF (f32: the same greedy outputs)."""
    monkeypatch.setenv("FTX_CACHE", str(tmp_path / "cache"))  # where the .gguf is converted
    path = _export(ftx_cli, qlora_run, "--quant", "f32", "--out", str(tmp_path / "m.gguf"))
    outputs = {}
    for model in (qlora_run, path):
        r = ftx_cli("generate", str(model), "--data", str(ftx_tiny_data["eval"]))
        assert r.exit_code == 0, r.output
        outputs[model] = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["output"] for o in outputs[path]] == [o["output"] for o in outputs[qlora_run]]
    args = ("--data", str(ftx_tiny_data["eval"]), "--max-new-tokens", "4")
    r = ftx_cli("eval", str(path), *args)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["model"] == str(path)
    r = ftx_cli("chat", str(path), "--max-new-tokens", "3", input="hello\n")
    assert r.exit_code == 0 and r.stdout.count("bot> ") == 1
    missing = ftx_cli("eval", str(tmp_path / "nope.gguf"), *args)
    assert missing.exit_code == 2


def test_the_export_section_writes_the_gguf_at_the_end_of_a_run(
    ftx_cli, ftx_tiny_model, ftx_tiny_data, tiny_arch_model, tmp_path
):
    base = ["run", "--plugin", "fft", "--data", str(ftx_tiny_data["train"])]
    out = tmp_path / "run"
    args = [*base, "--model", str(ftx_tiny_model), "--output", str(out)]
    r = ftx_cli(*args, "--set", "train.max_steps=1", "--set", "export.gguf=q8_0")
    assert r.exit_code == 0, r.output
    path = out / "export-gguf-q8_0" / "run-q8_0.gguf"
    assert path.is_file() and (path.parent / "Modelfile").is_file()
    assert json.loads((out / "summary.json").read_text())["artifacts"]["gguf"] == str(path)
    bad = ftx_cli(*args[:-1], str(tmp_path / "bad"), "--set", "export.gguf=q4_k_m")
    assert bad.exit_code == 2 and "export.gguf" in bad.stderr
    gpt2 = [*base, "--model", str(tiny_arch_model("gpt2")), "--output", str(tmp_path / "gpt2")]
    r = ftx_cli(*gpt2, "--set", "export.gguf=f16")
    assert r.exit_code == 2 and "export.gguf" in r.stderr and "'gpt2'" in r.stderr
    assert not (tmp_path / "bad").exists() and not (tmp_path / "gpt2").exists()


def test_qwen3_reads_back_the_same_model(ftx_cli, tiny_arch_model, tmp_path):
    """Qwen3 (q/k norms, explicit head_dim). transformers' GGUF reader ignores
    ``qwen3.attention.key_length`` and assumes Qwen3's default head_dim of 128, so the tiny
    model has that head_dim (llama.cpp reads the key)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from ftx.models import load_tokenizer

    source = tiny_arch_model("qwen3")
    config = AutoConfig.from_pretrained(str(source))
    config.head_dim = 128
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(tmp_path / "model")
    load_tokenizer(source).save_pretrained(tmp_path / "model")
    run = _as_run(tmp_path / "model", tmp_path)
    path = _export(ftx_cli, run, "--quant", "f32")
    ids = load_tokenizer(run / "model").encode(PROMPT)
    got = _logits(path.parent, ids, gguf_file=path.name)
    assert (got - _logits(run / "model", ids)).abs().max().item() <= 1e-5
    fields = _reader(path).fields
    assert fields["qwen3.attention.key_length"].contents() == 128


def test_the_modelfile_carries_the_runs_system_prompt(ftx_cli, tiny_arch_model, tmp_path):
    run = _as_run(tiny_arch_model("llama"), tmp_path)
    data = tmp_path / "train.jsonl"
    system = "You answer in order codes."
    answer = {"role": "assistant", "content": "1xS-LATTE"}
    rows = [
        {
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": q},
                answer,
            ]
        }
        for q in ("a latte", "a small latte")
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "config.yaml").write_text(f"data:\n  path: {data}\n")
    path = _export(ftx_cli, run)
    assert f'SYSTEM """{system}"""' in (path.parent / "Modelfile").read_text()
    rows[1]["messages"][0]["content"] = "Something else."
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = _export(ftx_cli, run, "--overwrite")
    assert "SYSTEM" not in (path.parent / "Modelfile").read_text()
