"""One training profile (configs/train_<profile>.yaml) plus overrides, validated before any model loads.

`load_train_config("demo", max_steps=3)` reads the YAML, applies the overrides and checks every field;
`check_runtime(config, device)` then checks what only the machine can answer: CUDA, bitsandbytes, Unsloth.
A bad value is a ValueError naming the field and the value, never a traceback from inside TRL.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CONFIGS_DIR = Path(__file__).parent / "configs"
GPU_INSTALL_HINT = "install the GPU extras on a CUDA machine: `pip install -e .[gpu]`"


class TrainConfig(BaseModel):
    """Every field is explained in the profiles under configs/."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: str = Field(min_length=1)
    # LoRA
    lora_r: int = Field(gt=0)
    lora_alpha: int = Field(gt=0)
    lora_dropout: float = Field(ge=0.0, lt=1.0)
    target_modules: tuple[str, ...] = Field(min_length=1)
    # optimisation
    learning_rate: float = Field(gt=0.0)
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    warmup_steps: int = Field(default=0, ge=0)
    max_steps: int | None = Field(default=None, gt=0)  # wins over num_train_epochs when both are set, as in HF
    num_train_epochs: float | None = Field(default=None, gt=0.0)
    per_device_train_batch_size: int = Field(gt=0)
    gradient_accumulation_steps: int = Field(gt=0)
    seed: int = 42
    max_train_minutes: float | None = Field(default=None, gt=0.0)  # wall-clock budget: stop at the next step past it
    # sequences and batching
    max_length: int = Field(gt=0)
    min_completion_tokens: int = Field(gt=0)
    packing: bool = False  # several samples in one row of max_length (TRL's best-fit decreasing)
    padding_free: bool = False  # a batch is one row, no pad tokens; position_ids mark where samples start
    completion_logits_only: bool = False  # lm_head + loss only at positions where a label is
    # eval, checkpoints, early stopping
    per_device_eval_batch_size: int = Field(default=4, gt=0)
    max_eval_samples: int | None = Field(default=None, gt=0)
    eval_steps: int | None = Field(default=None, gt=0)  # None: one eval after training
    early_stopping_patience: int | None = Field(default=None, gt=0)  # evals without improvement before stopping
    save_steps: int = Field(default=0, ge=0)  # 0: no checkpoints, a killed run starts over
    save_total_limit: int = Field(default=2, gt=0)
    logging_steps: int = Field(default=1, gt=0)
    # hardware and backend
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # auto: bf16 on a GPU and on a CPU with native bf16 (AVX-512 BF16, AMX), float32 on others (models.base.compute_dtype)
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    quantization: Literal["none", "4bit"] = "none"
    backend: Literal["hf", "unsloth", "auto"] = "hf"  # auto: unsloth when installed on a CUDA machine, else hf
    gradient_checkpointing: bool = False
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = "sdpa"
    # experiment trackers, from the environment (see `trackers`), not from a profile
    report_to: tuple[Literal["tensorboard", "wandb", "comet_ml"], ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.min_completion_tokens >= self.max_length:
            raise ValueError(
                f"min_completion_tokens={self.min_completion_tokens} must be below max_length={self.max_length}"
            )
        if self.max_steps is None and self.num_train_epochs is None:
            raise ValueError("set max_steps or num_train_epochs (max_steps wins when both are set)")
        if self.early_stopping_patience is not None:
            if self.eval_steps is None:
                raise ValueError(f"early_stopping_patience={self.early_stopping_patience} needs eval_steps")
            # the best checkpoint is reloaded at the end, so every eval must have a checkpoint to go back to
            if self.save_steps == 0 or self.save_steps % self.eval_steps:
                raise ValueError(
                    f"early_stopping_patience needs save_steps to be a multiple of eval_steps={self.eval_steps}, "
                    f"got save_steps={self.save_steps}"
                )
        return self


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
        parts.append(f"{shown}: {item['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def resolve_backend(config: TrainConfig, device: str) -> str:
    """'auto' -> 'unsloth' on CUDA with unsloth installed, else 'hf'; explicit choices stay as they are."""
    if config.backend != "auto":
        return config.backend
    return "unsloth" if device == "cuda" and importlib.util.find_spec("unsloth") is not None else "hf"


TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "comet_ml": "comet_ml"}


def trackers(wandb_key_set: bool, comet_key_set: bool) -> tuple[str, ...]:
    """TensorBoard whenever it is installed (its logs stay in the run folder), W&B and Comet ML when their key is set."""
    chosen = ["tensorboard"] if importlib.util.find_spec("tensorboard") is not None else []
    return tuple(chosen + ["wandb"] * wandb_key_set + ["comet_ml"] * comet_key_set)


def check_runtime(config: TrainConfig, device: str) -> None:
    """QLoRA and Unsloth need CUDA and their packages; say so before any model loads."""
    gpu_only = [("quantization", config.quantization, "4bit"), ("backend", config.backend, "unsloth"),
                ("attn_implementation", config.attn_implementation, "flash_attention_2")]
    for name, value, gpu_value in gpu_only:
        if value == gpu_value and device != "cuda":
            raise ValueError(f"{name}={value!r} needs a CUDA GPU, but training runs on {device!r}")
    needed = (["bitsandbytes"] if config.quantization == "4bit" else []) + (
        ["unsloth"] if config.backend == "unsloth" else []
    )
    for package in needed:
        if importlib.util.find_spec(package) is None:
            raise ValueError(f"the {package!r} package is missing: {GPU_INSTALL_HINT}")
    for tracker in config.report_to:
        if importlib.util.find_spec(TRACKER_PACKAGES[tracker]) is None:
            raise ValueError(f"report_to={tracker!r} needs the {TRACKER_PACKAGES[tracker]!r} package: "
                             f"`pip install {TRACKER_PACKAGES[tracker]}`, or unset its key")


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
    resumed_from_step: int = 0  # the checkpoint step a resumed run continued from; 0 for a fresh run
    peak_memory_mb: float = 0.0  # CUDA: max allocated; CPU: the process's max resident set
    eval_losses: list[tuple[int, float]] = field(default_factory=list)  # evals during training
    steps_planned: int = 0  # max_steps, or what num_train_epochs came to; `steps` are the steps done
    stopped_by_budget: bool = False  # max_train_minutes ran out before steps_planned
    allocator: str = "glibc"  # the process's malloc: "jemalloc" when preloaded (make demo/dev), else glibc's
    dtype: str = ""  # what the weights were held and run in: config.dtype resolved for this machine
