"""LoRA fine-tuning, thin over TRL's `SFTTrainer` + PEFT.

One entry point, `train_adapter`: tokenize the SFT samples through the chat template (the same one
`moxi generate` uses), build `SFTConfig` + `SFTTrainer(peft_config=LoraConfig(...))`, `train()`,
`save_model()`, then write the model card, config, log and loss plot next to the adapter.

We tokenize ourselves instead of handing TRL the prompt/completion text for one reason: truncation.
TRL can only cut a whole sequence from one end. A README section often outruns `max_length`, and an
unusual repository's prompt can too (long Java/C# paths tokenize at ~2.6 characters a token): cutting
the end may drop the whole completion, and TRL filters the sample out; cutting the start drops the
system prompt. `fit_to_length` instead keeps the completion's head and cuts the
middle of the prompt, so the system turn and the instruction (the prompt's last line) both survive.
TRL still builds the labels from our `completion_mask` (`completion_only_loss=True`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from moxi_pipeline.adapter_card import plot_losses, write_records
from moxi_pipeline.prompts import to_prompt_completion
from moxi_pipeline.records import SftSample

CONFIGS_DIR = Path(__file__).parent / "configs"
GPU_INSTALL_HINT = "install the GPU extras on a CUDA machine: `pip install -e .[gpu]`"


class TrainConfig(BaseModel):
    """One training profile (configs/train_<profile>.yaml) plus overrides; every field is explained there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: str = Field(min_length=1)
    lora_r: int = Field(gt=0)
    lora_alpha: int = Field(gt=0)
    lora_dropout: float = Field(ge=0.0, lt=1.0)
    target_modules: tuple[str, ...] = Field(min_length=1)
    learning_rate: float = Field(gt=0.0)
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    warmup_steps: int = Field(default=0, ge=0)
    max_steps: int = Field(gt=0)
    per_device_train_batch_size: int = Field(gt=0)
    gradient_accumulation_steps: int = Field(gt=0)
    per_device_eval_batch_size: int = Field(default=4, gt=0)
    max_eval_samples: int | None = Field(default=None, gt=0)
    max_length: int = Field(gt=0)
    min_completion_tokens: int = Field(gt=0)
    seed: int = 42
    logging_steps: int = Field(default=1, gt=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["float32", "bfloat16"] = "bfloat16"
    quantization: Literal["none", "4bit"] = "none"
    backend: Literal["hf", "unsloth"] = "hf"
    gradient_checkpointing: bool = False

    @model_validator(mode="after")
    def _completion_fits(self) -> "TrainConfig":
        if self.min_completion_tokens >= self.max_length:
            raise ValueError(
                f"min_completion_tokens={self.min_completion_tokens} must be below max_length={self.max_length}"
            )
        return self


@dataclass(frozen=True)
class TrainResult:
    adapter_dir: str
    steps: int
    duration_s: float
    train_tokens: int
    tokens_per_s: float
    losses: list[tuple[int, float]]
    eval_loss: float | None
    loss_plot: str
    dataset_hash: str


def available_profiles() -> list[str]:
    return sorted(path.stem.removeprefix("train_") for path in CONFIGS_DIR.glob("train_*.yaml"))


def load_train_config(profile: str = "demo", **overrides) -> TrainConfig:
    """configs/train_<profile>.yaml, then `overrides` on top; any bad field is a ValueError naming it."""
    path = CONFIGS_DIR / f"train_{profile}.yaml"
    if not path.is_file():
        raise ValueError(f"train profile {profile!r} does not exist; available: {', '.join(available_profiles())}")
    values = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(overrides) - set(TrainConfig.model_fields))
    if unknown:
        raise ValueError(f"unknown train config override(s) {unknown}; known fields: {sorted(TrainConfig.model_fields)}")
    values.update(profile=profile, **overrides)
    try:
        return TrainConfig(**values)
    except ValidationError as error:
        raise ValueError(f"train profile {profile!r}: {describe_errors(error)}") from None


def describe_errors(error: ValidationError) -> str:
    """`lora_r=0: Input should be greater than 0`, one per bad field, instead of pydantic's multi-line dump."""
    parts = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "config"
        shown = f"{field}={item['input']!r}" if item["loc"] else field
        parts.append(f"{shown}: {item['msg']}")
    return "; ".join(parts)


def check_runtime(config: TrainConfig, device: str) -> None:
    """QLoRA and Unsloth need CUDA and their packages; say so before any model loads."""
    import importlib.util

    gpu_only = [("quantization", config.quantization, "4bit"), ("backend", config.backend, "unsloth")]
    for field, value, gpu_value in gpu_only:
        if value == gpu_value and device != "cuda":
            raise ValueError(f"{field}={value!r} needs a CUDA GPU, but training runs on {device!r}")
    needed = (["bitsandbytes"] if config.quantization == "4bit" else []) + (
        ["unsloth"] if config.backend == "unsloth" else []
    )
    for package in needed:
        if importlib.util.find_spec(package) is None:
            raise ValueError(f"the {package!r} package is missing: {GPU_INSTALL_HINT}")


def fit_to_length(
    prompt_ids: list[int], completion_ids: list[int], max_length: int, min_completion_tokens: int
) -> tuple[list[int], list[int]]:
    """Fit prompt + completion into max_length, keeping at least min_completion_tokens of the completion.

    The completion keeps its head. An over-long prompt loses its middle: the first half of its budget
    (system turn, first key file) and the last half (end of the tree, project line, instruction,
    assistant header) stay, so the model still sees the request it answers.
    """
    if len(prompt_ids) + len(completion_ids) <= max_length:
        return prompt_ids, completion_ids
    completion_budget = max(max_length - len(prompt_ids), min(len(completion_ids), min_completion_tokens))
    completion_ids = completion_ids[:completion_budget]
    prompt_budget = max_length - len(completion_ids)
    if len(prompt_ids) > prompt_budget:
        head = prompt_budget // 2
        prompt_ids = prompt_ids[:head] + prompt_ids[len(prompt_ids) - (prompt_budget - head) :]
    return prompt_ids, completion_ids


def chat_text(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def tokenize_sample(tokenizer, sample: SftSample, max_length: int, min_completion_tokens: int) -> dict:
    """input_ids + completion_mask (1 on completion tokens) for one sample, chat template applied.

    Prompt and completion are tokenized apart, as at inference (prompt ids, then generated ids): tokenizing
    the joined text would let BPE merge across the boundary (e.g. a completion opening with a newline).
    """
    pair = to_prompt_completion(sample)
    prompt_text = chat_text(tokenizer, pair["prompt"], add_generation_prompt=True)
    full_text = chat_text(tokenizer, pair["prompt"] + pair["completion"], add_generation_prompt=False)
    if not full_text.startswith(prompt_text):
        raise ValueError(
            f"sample from {sample.repo_url!r}: the chat template renders the prompt differently once the "
            "answer follows it, so the completion cannot be located"
        )
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(full_text[len(prompt_text) :], add_special_tokens=False)["input_ids"]
    prompt_ids, completion_ids = fit_to_length(prompt_ids, completion_ids, max_length, min_completion_tokens)
    return {
        "input_ids": prompt_ids + completion_ids,
        "completion_mask": [0] * len(prompt_ids) + [1] * len(completion_ids),
    }


def build_dataset(tokenizer, samples: list[SftSample], config: TrainConfig):
    from datasets import Dataset

    rows = [tokenize_sample(tokenizer, s, config.max_length, config.min_completion_tokens) for s in samples]
    return Dataset.from_list(rows)


def load_for_training(base_model_dir: str | Path, config: TrainConfig, device: str):
    """(model, tokenizer, peft_config) for the chosen backend; peft_config is None when the model already has LoRA."""
    if config.backend == "unsloth":
        return load_unsloth(base_model_dir, config)
    import torch
    from transformers import AutoModelForCausalLM

    from moxi_pipeline.modeling import load_tokenizer

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
        model = AutoModelForCausalLM.from_pretrained(
            str(base_model_dir), quantization_config=quantization, dtype=torch.bfloat16, device_map={"": 0}
        )
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    else:
        dtype = getattr(torch, config.dtype)
        model = AutoModelForCausalLM.from_pretrained(str(base_model_dir), dtype=dtype).to(device)
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


def sft_config(config: TrainConfig, out_dir: Path, device: str):
    from trl import SFTConfig

    on_gpu_bf16 = device == "cuda" and (config.dtype == "bfloat16" or config.quantization == "4bit")
    return SFTConfig(
        output_dir=str(out_dir),  # save_strategy="no": only save_model() writes here
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_steps,
        logging_steps=config.logging_steps,
        seed=config.seed,
        max_length=config.max_length,  # already fitted by fit_to_length; TRL's cut is then a no-op
        completion_only_loss=True,  # labels = -100 wherever our completion_mask is 0
        gradient_checkpointing=config.gradient_checkpointing,
        # On CPU the weights are already in config.dtype; autocast on top only adds casts.
        bf16=on_gpu_bf16,
        use_cpu=device == "cpu",
        optim="paged_adamw_8bit" if config.quantization == "4bit" else "adamw_torch",
        include_num_input_tokens_seen="non_padding",
        save_strategy="no",  # no optimizer checkpoints: only the final adapter is kept
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_pin_memory=device == "cuda",
    )


def progress_callback(progress: Callable[[dict], None]):
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            progress({"step": state.global_step, "max_steps": state.max_steps, **(logs or {})})

    return ProgressCallback()


def train_adapter(
    base_model_dir: str | Path,
    train: list[SftSample],
    eval: list[SftSample],
    config: TrainConfig,
    out_dir: str | Path,
    dataset_hash: str,
    progress: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train a LoRA adapter on `train`, measure loss on `eval`, and save everything into `out_dir`.

    Everything is written into a temporary folder beside `out_dir`, renamed to `out_dir` once complete:
    a crash never leaves a half-written adapter folder that looks like a finished one.
    """
    from trl import SFTTrainer

    from moxi_pipeline.modeling import publish_dir, resolve_device, staging_dir

    if not train:
        raise ValueError("train: no SFT samples to train on (the train split is empty)")
    device = resolve_device(config.device)
    check_runtime(config, device)
    final_dir = Path(out_dir)
    out_dir = staging_dir(final_dir)
    model, tokenizer, peft_config = load_for_training(base_model_dir, config, device)
    eval = eval[: config.max_eval_samples] if config.max_eval_samples else eval
    trainer = SFTTrainer(
        model=model,
        args=sft_config(config, out_dir, device),
        train_dataset=build_dataset(tokenizer, train, config),
        eval_dataset=build_dataset(tokenizer, eval, config) if eval else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[progress_callback(progress)] if progress else None,
    )
    started = time.perf_counter()
    trainer.train()
    duration_s = time.perf_counter() - started
    eval_loss = trainer.evaluate()["eval_loss"] if eval else None
    trainer.save_model(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    # save_model also pickles TrainingArguments; training_config.json records the same settings as JSON.
    (out_dir / "training_args.bin").unlink(missing_ok=True)
    history = trainer.state.log_history
    losses = [(entry["step"], float(entry["loss"])) for entry in history if "loss" in entry]
    train_tokens = int(trainer.state.num_input_tokens_seen)
    result = TrainResult(
        adapter_dir=str(final_dir),
        steps=trainer.state.global_step,
        duration_s=round(duration_s, 2),
        train_tokens=train_tokens,
        tokens_per_s=round(train_tokens / duration_s, 1) if duration_s > 0 else 0.0,
        losses=losses,
        eval_loss=eval_loss,
        loss_plot=str(final_dir / plot_losses(losses, out_dir / "loss_curve.png", eval_loss).name),
        dataset_hash=dataset_hash,
    )
    write_records(out_dir, base_model_dir, config, result, history, len(train), len(eval))
    publish_dir(out_dir, final_dir)
    return result
