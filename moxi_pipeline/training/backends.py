"""The model under training, by backend: `hf` (transformers + PEFT, optionally 4-bit through bitsandbytes)
or `unsloth` (its FastLanguageModel, CUDA only).

Unsloth patches trl, transformers and peft when it is imported; imported after them it cannot, and
trains at plain speed or breaks. So nothing here imports an ML library at module level, and
`import_backend` imports unsloth before trl whenever the unsloth backend is chosen.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from moxi_pipeline.training.config import TrainConfig


def import_backend(backend: str, completion_logits_only: bool = False):
    """TRL's SFTTrainer (or the completion-logits variant), with Unsloth imported first when it is the backend."""
    if backend == "unsloth":
        import unsloth  # noqa: F401  (must precede trl, transformers and peft)
    from trl import SFTTrainer

    return completion_logits_trainer(SFTTrainer) if completion_logits_only else SFTTrainer


def completion_logits_trainer(sft_trainer):
    """SFTTrainer whose loss runs the lm_head only at positions that predict a completion token.

    With the loss on the completion, the prompt's logits are computed and thrown away; for a 135M model with
    a 49k vocabulary the lm_head and its softmax are a large share of a step (hidden 576 x 49,152 = 28M
    multiply-adds a position, against ~106M for the rest of the model). `logits_to_keep` takes the positions
    to keep, one list for every row of the batch: the positions where any row has a label (all of them, for
    batch 1 or a padding-free row). The loss is the same sum over completion tokens, divided by the batch's
    count, that TRL's loss takes.
    """
    import torch.nn.functional as F

    class CompletionLogitsTrainer(sft_trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            inputs.pop("completion_mask", None)
            targets = labels[:, 1:]  # position i predicts token i + 1
            labelled = targets != -100
            keep = labelled.any(dim=0).nonzero().squeeze(-1)
            outputs = model(**inputs, logits_to_keep=keep, use_cache=False)  # no cache: a packed mask needs it off
            wanted = labelled[:, keep]
            loss = F.cross_entropy(outputs.logits[wanted].float(), targets[:, keep][wanted], reduction="sum")
            loss = loss / (num_items_in_batch if num_items_in_batch is not None else max(int(wanted.sum()), 1))
            return (loss, outputs) if return_outputs else loss

    return CompletionLogitsTrainer


@contextmanager
def fused_head_on_labelled_positions():
    """Within this block TRL's fused LM head (DPO's per-token log-probabilities) projects only the positions that
    have a label, on the CPU too: the same log-probabilities, for a fraction of the head's work.

    TRL (1.16) compacts to the labelled positions only where Triton runs (CUDA, XPU); elsewhere it scores every
    position and masks afterwards, to keep tile shapes fixed for compilers that would otherwise recompile. On the
    CPU that sends the whole prompt through the head: a DPO pair of Gemma 3 270M is ~1,240 positions (its prompt
    twice, then the two answers; medians of the `cpu` profile's pairs) of which ~210 have a label, and its
    262k x 640 head is ~168M multiply-adds a position against ~100M for the rest of the model, so a step ran
    2.06x longer than it needs to (`benchmarks/dpo_head.py`; SmolLM2's 49k-way head: 1.50x). TRL reads
    the device test (`trl.trainer.utils._use_triton`) at each call, so it is swapped for the block's length; where
    a TRL version has no such name, nothing changes."""
    try:
        from trl.trainer import utils
    except ImportError:  # pragma: no cover - trl is a dependency
        yield
        return
    original = getattr(utils, "_use_triton", None)
    if original is None:
        yield
        return
    utils._use_triton = lambda device: device.type == "cpu" or original(device)
    try:
        yield
    finally:
        utils._use_triton = original


def local_rank() -> int:
    """This process's GPU under `accelerate launch` / torchrun (LOCAL_RANK), 0 when run alone."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def load_for_training(base_model_dir: str | Path, config: TrainConfig, device: str, backend: str = "hf"):
    """(model, tokenizer, peft_config) for the backend; peft_config is None when the model already has LoRA."""
    if backend == "unsloth":
        return load_unsloth(base_model_dir, config)
    import torch
    from transformers import AutoModelForCausalLM

    from moxi_pipeline.models.base import load_tokenizer

    tokenizer = load_tokenizer(base_model_dir)
    if config.quantization == "4bit":
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        # QLoRA: nf4 weights, double quantization (~0.4 bit/param saved), bf16 matmuls.
        quantization = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        # one whole copy per GPU: under DDP each process holds the model on its own LOCAL_RANK device
        model = AutoModelForCausalLM.from_pretrained(
            str(base_model_dir), quantization_config=quantization, dtype=torch.bfloat16,
            device_map={"": local_rank()}, attn_implementation=config.attn_implementation,
        )
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    else:
        from moxi_pipeline.models.base import compute_dtype

        dtype = compute_dtype(device, config.dtype)
        model = AutoModelForCausalLM.from_pretrained(
            str(base_model_dir), dtype=dtype, attn_implementation=config.attn_implementation
        ).to(device)
    check_target_modules(model, config.target_modules)
    return model, tokenizer, lora_config(config)


def load_unsloth(base_model_dir: str | Path, config: TrainConfig):
    """Unsloth patches the model with fused kernels; it adds LoRA itself, so no peft_config goes to TRL."""
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=str(base_model_dir),
        max_seq_length=config.max_length,
        dtype=None,  # unsloth picks bf16 on Ampere+ GPUs
        load_in_4bit=config.quantization == "4bit",
    )
    check_target_modules(model, config.target_modules)
    model = FastLanguageModel.get_peft_model(
        model,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        bias="none",
        use_gradient_checkpointing="unsloth" if config.gradient_checkpointing else False,
        random_state=config.seed,
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, None


def check_target_modules(model, target_modules) -> None:
    """Every LoRA target must name linear layers of this model; PEFT's own error comes late and vague."""
    import torch

    linear = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    missing = sorted(set(target_modules) - linear)
    if missing:
        raise ValueError(f"target_modules: {missing} are not linear layers of this model; it has {sorted(linear)}")


def lora_config(config: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
