"""DPO on preference pairs, continuing the SFT adapter: TRL's DPOTrainer does the work.

The trainable adapter starts as the SFT adapter; given a PeftModel with no `ref_model`, DPOTrainer copies that
adapter to a frozen "ref" adapter, so the reference is the SFT model, not the bare base model.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moxi_pipeline.storage.folders import publish_dir, staging_dir
from moxi_pipeline.training.config import CONFIGS_DIR, describe_errors
from moxi_pipeline.training.preferences import PreferencePair


class DpoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str = "demo"
    beta: float = Field(0.1, gt=0)
    loss_type: str = "sigmoid"
    learning_rate: float = Field(5e-6, gt=0)
    lr_scheduler_type: str = "constant"
    max_steps: int = Field(8, ge=1)
    per_device_train_batch_size: int = Field(1, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_length: int = Field(768, ge=32)
    logging_steps: int = Field(1, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    # preference_pairs: how many train prompts the SFT adapter answers, and how
    max_pairs: int | None = Field(48, ge=1)  # None: every train prompt
    pair_max_new_tokens: int = Field(160, ge=8)
    pair_temperature: float = Field(0.7, ge=0)
    max_rouge_l: float = Field(0.5, gt=0, le=1)


def default_dpo_profile(train_profile: str) -> str:
    """The DPO profile named like the train profile where configs/ has one (cpu, gpu-3b), else demo."""
    return train_profile if (CONFIGS_DIR / f"dpo_{train_profile}.yaml").is_file() else "demo"


def load_dpo_config(profile: str = "demo", **overrides) -> DpoConfig:
    """configs/dpo_<profile>.yaml, then `overrides`; a bad field is a ValueError naming it."""
    path = CONFIGS_DIR / f"dpo_{profile}.yaml"
    if not path.is_file():
        names = sorted(p.stem.removeprefix("dpo_") for p in CONFIGS_DIR.glob("dpo_*.yaml"))
        raise ValueError(f"dpo profile {profile!r} does not exist; available: {', '.join(names)}")
    try:
        return DpoConfig(**{**(yaml.safe_load(path.read_text()) or {}), "profile": profile, **overrides})
    except ValidationError as error:
        raise ValueError(f"dpo profile {profile!r}: {describe_errors(error)}") from None


@dataclass(frozen=True)
class DpoResult:
    adapter_dir: Path
    steps: int
    duration_s: float
    history: list[dict]  # TRL's log rows: loss, rewards/margins, rewards/accuracies per logging step


def train_dpo(base_model_dir: str | Path, sft_adapter_dir: str | Path, pairs: list[PreferencePair], config: DpoConfig,
              out_dir: str | Path) -> DpoResult:
    """A DPO adapter in `out_dir`, with training_config.json naming its base model, as an SFT adapter has."""
    import torch
    from datasets import Dataset
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    if not pairs:
        raise ValueError("DPO needs preference pairs; preference_pairs gave none")
    out_dir, sft_adapter_dir = Path(out_dir), Path(sft_adapter_dir)
    base = AutoModelForCausalLM.from_pretrained(str(base_model_dir), dtype=torch.float32)
    try:
        model = PeftModel.from_pretrained(base, str(sft_adapter_dir), is_trainable=True)
    except RuntimeError as error:
        raise ValueError(f"adapter {sft_adapter_dir} was trained on another base model than {base_model_dir}: "
                         f"{str(error)[:300]}") from error
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir))
    staging = staging_dir(out_dir)
    args = DPOConfig(
        output_dir=str(staging / "checkpoints"), beta=config.beta, loss_type=[config.loss_type],
        learning_rate=config.learning_rate, lr_scheduler_type=config.lr_scheduler_type, max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps, max_length=config.max_length,
        logging_steps=config.logging_steps, save_strategy="no", report_to=[],
        use_cpu=config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available()),
    )
    dataset = Dataset.from_list([pair.to_dpo_row() for pair in pairs])
    trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    started = time.perf_counter()
    trainer.train()
    duration_s = time.perf_counter() - started
    model.save_pretrained(str(staging), selected_adapters=["default"])
    tokenizer.save_pretrained(str(staging))
    history = [row for row in trainer.state.log_history if "loss" in row]
    (staging / "training_config.json").write_text(json.dumps({
        "config": config.model_dump(mode="json"), "stage": "dpo", "pairs": len(pairs),
        "base_model_dir": os.path.relpath(Path(base_model_dir).resolve(), out_dir.resolve()),
        "sft_adapter_dir": str(sft_adapter_dir),
    }, indent=2))
    (staging / "train_log.json").write_text(json.dumps(history, indent=2))
    publish_dir(staging, out_dir)
    return DpoResult(out_dir, trainer.state.global_step, duration_s, history)


def plot_dpo(history: list[dict], path: str | Path) -> Path:
    """Loss, reward margin and reward accuracy per logged step, one panel each."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server or in CI
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(10, 3))
    steps = [row.get("step", index + 1) for index, row in enumerate(history)]
    for axis, key in zip(axes, ("loss", "rewards/margins", "rewards/accuracies")):
        axis.plot(steps, [row.get(key, float("nan")) for row in history], marker="o", markersize=3)
        axis.set_title(key)
        axis.set_xlabel("step")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)
