"""QLoRA the way the TRL/PEFT tutorials write it: the baseline that ``bench/vs_tools.py`` times.

This is deliberately *not* tuned. It follows the common form of the Hugging Face QLoRA tutorials
(TRL docs "PEFT integration", the "fine-tune LLMs with TRL" blog posts):

* ``BitsAndBytesConfig``: 4-bit NF4, double quantisation, bf16 compute; the model loaded with
  ``dtype=torch.bfloat16`` and ``device_map="auto"``;
* ``prepare_model_for_kbit_training(model)`` with its defaults (gradient checkpointing on);
* ``LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear")`` handed
  to ``SFTTrainer`` as ``peft_config``;
* the FastChat rows mapped to a ``messages`` column and left to ``SFTTrainer`` to tokenise with
  the tokenizer's chat template; loss on the **whole conversation** (TRL's default for a
  ``messages`` data set, and what most tutorials do);
* ``SFTConfig`` at TRL's defaults (gradient checkpointing on, bf16 on) except what a tutorial
  always sets (steps, batch, learning rate and schedule, max length, logging, output) and
  ``use_cpu=True``, without which TRL refuses to start on a machine without a GPU.

Run it directly::

    python bench/baselines/trl_qlora_tutorial.py --model DIR --data train.jsonl --output OUT \
        --steps 30 --batch 8 --lr 1e-3

It writes the adapter (``save_model``) and ``trainer_state.json`` (``save_state``) to OUT.
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, help="FastChat/Vicuna `conversations` JSONL")
    parser.add_argument("--output", required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=float, default=0.05, help="warmup ratio")
    parser.add_argument("--max-length", type=int, default=512)
    args = parser.parse_args()

    import torch
    from datasets import load_dataset
    from peft import LoraConfig, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import SFTConfig, SFTTrainer

    bnb_config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    model = AutoModelForCausalLM.from_pretrained(
        args.model, quantization_config=bnb_config, dtype=torch.bfloat16, device_map="auto"
    )
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = prepare_model_for_kbit_training(model)

    roles = {"human": "user", "user": "user", "gpt": "assistant", "system": "system"}

    def to_messages(row):
        return {
            "messages": [
                {"role": roles[turn["from"]], "content": turn["value"]}
                for turn in row["conversations"]
            ]
        }

    dataset = load_dataset("json", data_files=args.data, split="train")
    dataset = dataset.map(to_messages, remove_columns=dataset.column_names)

    peft_config = LoraConfig(
        r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        bias="none",
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    training_args = SFTConfig(
        output_dir=args.output,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch,
        learning_rate=args.lr,
        lr_scheduler_type="cosine",
        warmup_steps=args.warmup,
        max_length=args.max_length,
        logging_steps=5,
        report_to="none",
        use_cpu=True,
    )
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        peft_config=peft_config,
        processing_class=tokenizer,
    )
    trainer.train()
    trainer.save_model()
    trainer.save_state()


if __name__ == "__main__":
    main()
