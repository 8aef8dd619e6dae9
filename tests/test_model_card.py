"""Model cards (``model/README.md``, ``adapter/README.md``): Hugging Face front matter and the
run's facts, written by every finished run (:mod:`ftx.model_card`)."""

from __future__ import annotations

import json

import ftx
from ftx.model_card import base_identity, gguf_identity, read_front_matter


def test_a_finished_run_writes_cards_with_front_matter_and_facts(
    ftx_tiny_model, ftx_tiny_data, tmp_path
):
    result = ftx.run(
        "qlora",
        model=ftx_tiny_model,
        data={"path": ftx_tiny_data["train"], "eval": ftx_tiny_data["eval"]},
        train={"max_steps": 2, "logging_steps": 1, "per_device_train_batch_size": 4},
        method={"r": 4},
        output=tmp_path / "run",
    )
    summary = result.summary
    for folder, library in (("model", "transformers"), ("adapter", "peft")):
        card = result.output / folder / "README.md"
        front = read_front_matter(card)
        assert front["library_name"] == library and front["pipeline_tag"] == "text-generation"
        assert {"ftx", "qlora", "supervised"} <= set(front["tags"])
        assert "base_model" not in front  # a local directory is not a hub id
        text = card.read_text()
        assert str(ftx_tiny_model) in text
        assert f"| `train.jsonl` | train | `{summary['data_hashes']['train']}` | 48 |" in text
        assert f"| `eval.jsonl` | eval | `{summary['data_hashes']['eval']}` | 6 |" in text
        assert "`r=4`" in text and f"steps: {summary['steps']}, learning rate" in text
        after = summary["eval_after"]["score"]
        assert f"| exact | {summary['eval_before']['score']:.3f} | {after:.3f} | 6 |" in text
        assert "![training loss](loss.png)" in text and (card.parent / "loss.png").is_file()
    assert "AutoPeftModelForCausalLM" in (result.output / "adapter" / "README.md").read_text()


def test_gguf_metadata_names_the_hub_model():
    general = {
        "name": "Smollm2 135M 8k Lc100K Mix1 Ep2",
        "organization": "HuggingFaceTB",
        "license": "apache-2.0",
        "languages": ["en"],
    }
    got = gguf_identity(general, "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert got["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert got["license"] == "apache-2.0" and got["language"] == ["en"]
    repo = {**general, "base_model.0.repo_url": "https://huggingface.co/org/Base-7B"}
    assert gguf_identity(repo, "x-f16.gguf")["base_model"] == "org/Base-7B"
    assert gguf_identity({"name": "x"}, "x.gguf")["base_model"] is None


def test_base_identity_of_a_converted_gguf_a_snapshot_and_a_trained_model(tmp_path):
    converted = tmp_path / "cache" / "gguf" / "SmolLM2-135M-Instruct.Q8_0-abc"
    converted.mkdir(parents=True)
    source = {"gguf_file": "SmolLM2-135M-Instruct.Q8_0.gguf", "general": {"organization": "O"}}
    (converted / "ftx_gguf_source.json").write_text(json.dumps(source))
    assert base_identity(converted)["base_model"] == "O/SmolLM2-135M-Instruct"
    snapshot = tmp_path / "hub" / "models--org--name" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    assert base_identity(snapshot)["base_model"] == "org/name"
    trained = tmp_path / "run" / "model"
    trained.mkdir(parents=True)
    (trained / "README.md").write_text("---\nbase_model: org/name\nlicense: mit\n---\n# x\n")
    assert base_identity(trained) | {"source": None} == {
        "base_model": "org/name",
        "license": "mit",
        "source": None,
    }


def test_the_card_says_how_to_run_it_in_llama_cpp_and_ollama():
    from ftx.model_card import usage

    written = "\n".join(usage("transformers", None, gguf="q4_0"))
    assert "export-gguf-q4_0/RUN_NAME-q4_0.gguf" in written and "ollama create" in written
    assert "ftx export RUN_DIR --format gguf" not in written  # the run wrote it already
    to_write = "\n".join(usage("peft", "org/base"))
    assert "ftx export RUN_DIR --format gguf --quant q8_0" in to_write
