"""LoRA training throughput on the CPU: TRL's defaults against Moxi's tuned configuration, in one run.

    .venv/bin/python benchmarks/train_throughput.py [--records ../shared/corpus/train.jsonl] [--samples 32]
        [--max-length 512] [--base-model DIR]

Both sides train the same LoRA (the `demo` profile's rank and targets) on the same model, the same
samples in the same order, each cut to the same max_length by `train.fit_to_length`, for one pass:

  (a) TRL's defaults: fp32 weights, batches of 4 padded to the longest, no packing, logits for every position;
  (b) Moxi's tuned CPU configuration: bf16 weights, padding-free batches of 4 (one row, no pad tokens,
      position_ids keep the samples apart), and logits only where a label is (`logits_to_keep`): with the
      loss on the completion, the 49k-way lm_head and its softmax run on ~1/3 of the positions.

tokens/s counts the real (non-pad) tokens of the epoch, the same number on both sides. GFLOP/s is the matmul work done, padding included:
4 x (non-embedding params) per position (forward 2, backward to the inputs 2; the base is frozen) plus
4 x hidden x vocab per position whose logits are computed. Loss: the mean of the last quarter of steps'
training losses, after the same tokens on both sides. The last line is exactly:

    train_throughput: ratio=<x> moxi_tok_s=<a> trl_tok_s=<b> loss_moxi=<c> loss_trl=<d>
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

BATCH = 4


def section_samples(records_path: str, count: int):
    from moxi_pipeline.chunk import chunk_records
    from moxi_pipeline.collect import collect_repos
    from moxi_pipeline.dataset import DatasetConfig, build_sft_dataset

    records = collect_repos("jsonl", records_path).records
    samples = build_sft_dataset(records, chunk_records(records), DatasetConfig())
    return [s for s in samples if s.split == "train"][:count]


def completion_logits_trainer(base_class):
    """SFTTrainer whose loss computes logits only at positions that predict a completion token."""
    import torch.nn.functional as F

    class CompletionLogitsTrainer(base_class):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            targets = labels[0, 1:]  # padding-free: one row; position i predicts token i + 1
            keep = (targets != -100).nonzero().squeeze(-1)
            inputs.pop("completion_mask", None)
            outputs = model(**inputs, logits_to_keep=keep, use_cache=False)
            loss = F.cross_entropy(outputs.logits[0].float(), targets[keep], reduction="sum")
            return loss / (num_items_in_batch if num_items_in_batch is not None else len(keep))

    return CompletionLogitsTrainer


def run_side(name: str, base_model: str, samples, max_length: int, tuned: bool, out_dir: Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from moxi_pipeline.modeling import load_tokenizer
    from moxi_pipeline.train import build_dataset, load_train_config, lora_config

    config = load_train_config("demo", max_length=max_length, min_completion_tokens=min(160, max_length // 4))
    tokenizer = load_tokenizer(base_model)
    dataset = build_dataset(tokenizer, samples, config)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.bfloat16 if tuned else torch.float32)
    counts = {"positions": 0, "logit_positions": 0}
    args = SFTConfig(
        output_dir=str(out_dir / name), per_device_train_batch_size=BATCH, gradient_accumulation_steps=1,
        num_train_epochs=1, learning_rate=config.learning_rate, lr_scheduler_type="constant", warmup_steps=0,
        logging_steps=1, seed=42, data_seed=42, completion_only_loss=True, max_length=None if tuned else max_length,
        padding_free=tuned, use_cpu=True, bf16=False, report_to="none", disable_tqdm=True, save_strategy="no",
        activation_checkpointing=False, include_num_input_tokens_seen="non_padding",
    )
    trainer_class = completion_logits_trainer(SFTTrainer) if tuned else SFTTrainer
    trainer = trainer_class(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                            peft_config=lora_config(config))
    collate = trainer.data_collator

    def counting_collator(rows):
        batch = collate(rows)
        counts["positions"] += batch["input_ids"].numel()
        labelled = (batch["labels"][:, 1:] != -100).sum().item() if tuned else batch["input_ids"].numel()
        counts["logit_positions"] += labelled
        return batch

    trainer.data_collator = counting_collator
    torch.manual_seed(42)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    tail = losses[-max(1, len(losses) // 4):]
    body = sum(p.numel() for n, p in model.named_parameters() if "embed" not in n and "lora_" not in n)
    hidden, vocab = model.config.hidden_size, model.config.vocab_size
    flops = 4 * body * counts["positions"] + 4 * hidden * vocab * counts["logit_positions"]
    tokens = sum(len(row["input_ids"]) for row in dataset)  # one epoch: the same count on both sides
    return {"name": name, "tokens": tokens, "positions": counts["positions"], "seconds": seconds,
            "tok_s": tokens / seconds, "gflop_s": flops / seconds / 1e9, "loss": sum(tail) / len(tail),
            "steps": trainer.state.global_step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", default="../shared/corpus/train.jsonl")
    parser.add_argument("--samples", type=int, default=32, help="section samples to train on (a multiple of 4)")
    parser.add_argument("--max-length", type=int, default=768, help="the demo's: section samples mostly fit whole")
    parser.add_argument("--base-model", default=None, help="a model folder (default: the embedded SmolLM2, imported once)")
    args = parser.parse_args()
    import torch

    from moxi_pipeline.modeling import import_base_model
    from moxi_pipeline.settings import load_settings

    base_model = args.base_model or import_base_model("embedded", load_settings().models_dir / "base_model").path
    samples = section_samples(args.records, args.samples)
    with tempfile.TemporaryDirectory() as tmp:
        trl = run_side("trl_defaults", str(base_model), samples, args.max_length, tuned=False, out_dir=Path(tmp))
        moxi = run_side("moxi_tuned", str(base_model), samples, args.max_length, tuned=True, out_dir=Path(tmp))
    print(f"\n{len(samples)} samples, max_length {args.max_length}, batch {BATCH}, {torch.get_num_threads()} threads\n")
    print("| side | steps | real tokens | positions computed | seconds | tokens/s | GFLOP/s | loss (last 1/4) |")
    print("|---|---|---|---|---|---|---|---|")
    for side in (trl, moxi):
        print(f"| {side['name']} | {side['steps']} | {side['tokens']} | {side['positions']} | {side['seconds']:.1f} | "
              f"{side['tok_s']:.1f} | {side['gflop_s']:.1f} | {side['loss']:.4f} |")
    ratio = moxi["tok_s"] / trl["tok_s"]
    print(f"\ntrain_throughput: ratio={ratio:.2f} moxi_tok_s={moxi['tok_s']:.1f} trl_tok_s={trl['tok_s']:.1f} "
          f"loss_moxi={moxi['loss']:.4f} loss_trl={trl['loss']:.4f}")


if __name__ == "__main__":
    main()
