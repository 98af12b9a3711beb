"""LoRA training throughput on the CPU: TRL's defaults against Moxi's tuned configuration, in one run.

    .venv/bin/python benchmarks/train_throughput.py [--records ../shared/corpus/train.jsonl] [--samples 32]
        [--max-length 512] [--base-model DIR]

Both sides train the same LoRA (the `demo` profile's rank and targets) on the same model, the same
samples in the same order, each cut to the same max_length by `training.tokenize.fit_to_length`, for one pass:

  (a) TRL's defaults: fp32 weights, batches of 4 padded to the longest, no packing, logits for every position
      (activation checkpointing, which TRL turns on by default, is off on both sides: the ratio measures
      batching, dtype and logits alone);
  (b) Moxi's tuned CPU configuration, built by `training.train.sft_config` / `training.backends.import_backend` exactly as
      `train_adapter` builds it: bf16 weights where the CPU has native bf16 (else fp32), the same 4 samples
      a step fed one at a time (gradient accumulation: no pad tokens, and no cross-sample attention mask, which a padding-free row of 4 would
      need and which costs more than the padding on a CPU), and `completion_logits_only`: with the loss on the completion, the 49k-way
      lm_head and its softmax run only where a label is.

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
    from moxi_pipeline.collect import collect_repos
    from moxi_pipeline.dataset.chunk import chunk_records
    from moxi_pipeline.dataset.samples import DatasetConfig, build_sft_dataset

    records = collect_repos("jsonl", records_path).records
    samples = build_sft_dataset(records, chunk_records(records), DatasetConfig())
    return [s for s in samples if s.split == "train"][:count]


def side_config(tuned: bool, max_length: int):
    """The `demo` profile's LoRA and learning rate on both sides; (b) adds Moxi's CPU batching and dtype."""
    from moxi_pipeline.training.train import load_train_config

    common = dict(max_length=max_length, min_completion_tokens=min(160, max_length // 4), device="cpu",
                  max_steps=None, num_train_epochs=1, logging_steps=1, save_steps=0, warmup_steps=0,
                  lr_scheduler_type="constant")
    if tuned:  # 4 samples a step as on (a), one at a time: no padding and no cross-sample mask
        return load_train_config("demo", dtype="auto", per_device_train_batch_size=1,
                                 gradient_accumulation_steps=BATCH, completion_logits_only=True, **common)
    return load_train_config("demo", dtype="float32", per_device_train_batch_size=BATCH,
                             gradient_accumulation_steps=1, **common)


def run_side(name: str, base_model: str, samples, max_length: int, tuned: bool, out_dir: Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig

    from moxi_pipeline.models.base import load_tokenizer
    from moxi_pipeline.training.train import (
        build_dataset,
        import_backend,
        lora_config,
        sft_config,
    )

    config = side_config(tuned, max_length)
    tokenizer = load_tokenizer(base_model)
    dataset = build_dataset(tokenizer, samples, config)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=getattr(torch, config.dtype))
    if tuned:  # exactly what train_adapter builds for this config
        args = sft_config(config, out_dir / name, "cpu", has_eval=False)
    else:  # TRL's defaults, with the shared learning rate and schedule; activation checkpointing off as on (b)
        args = SFTConfig(output_dir=str(out_dir / name), per_device_train_batch_size=BATCH, num_train_epochs=1,
                         learning_rate=config.learning_rate, lr_scheduler_type="constant", max_length=max_length,
                         completion_only_loss=True,  # the task's loss (TRL's default takes every token of a tokenized set)
                         seed=config.seed, data_seed=config.seed, logging_steps=1, use_cpu=True, bf16=False,
                         activation_checkpointing=False, report_to="none", disable_tqdm=True, save_strategy="no")
    trainer = import_backend("hf", config.completion_logits_only)(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora_config(config))
    counts = {"positions": 0, "logit_positions": 0}
    collate = trainer.data_collator

    def counting_collator(rows):
        batch = collate(rows)
        counts["positions"] += batch["input_ids"].numel()
        labelled = (batch["labels"][:, 1:] != -100).sum().item()
        counts["logit_positions"] += labelled if config.completion_logits_only else batch["input_ids"].numel()
        return batch

    trainer.data_collator = counting_collator
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

    from moxi_pipeline.models.base import import_base_model
    from moxi_pipeline.settings import load_settings

    base_model = args.base_model or import_base_model("embedded", load_settings().models_dir / "base_model").path
    samples = section_samples(args.records, args.samples)
    with tempfile.TemporaryDirectory() as tmp:
        trl = run_side("trl_defaults", str(base_model), samples, args.max_length, tuned=False, out_dir=Path(tmp))
        moxi = run_side("moxi_tuned", str(base_model), samples, args.max_length, tuned=True, out_dir=Path(tmp))
    print(f"\n{len(samples)} samples, max_length {args.max_length}, {BATCH} samples a step, {torch.get_num_threads()} threads\n")
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
