"""DPO on preference pairs, continuing the SFT adapter: TRL's DPOTrainer does the work.

The trainable adapter starts as the SFT adapter; given a PeftModel with no `ref_model`, DPOTrainer copies that
adapter to a frozen "ref" adapter, so the reference is the SFT model, not the bare base model.

Checkpoints as the SFT adapter has them (`train.py`'s helpers): with `save_steps`, the Trainer saves every N
steps into `.<out_dir name>.checkpoints/` beside `out_dir`, fingerprinted by the config, the pairs' hash and the
SFT adapter; a second call for the same `out_dir` resumes from the newest checkpoint of that same run (another
run's are cleared). With a `checkpoint_store` (S3) each checkpoint is also published there, as `lora_adapter`'s
are, so a run killed on one machine resumes on another. They are removed once the adapter is published.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moxi_pipeline.storage.artifacts import ArtifactStore
from moxi_pipeline.storage.folders import publish_dir, staging_dir
from moxi_pipeline.training.backends import fused_head_on_labelled_positions
from moxi_pipeline.training.checkpoints import RUN_FINGERPRINT, PublishedCheckpoints
from moxi_pipeline.training.config import CONFIGS_DIR, describe_errors
from moxi_pipeline.readme.decoding import DecodingConfig
from moxi_pipeline.training.preferences import PAIR_REPETITION_PENALTY, PreferenceConfig, PreferencePair
from moxi_pipeline.training.train import (
    checkpoint_dir_for,
    checkpoint_step,
    checkpoint_to_resume,
    run_fingerprint,
)


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
    save_steps: int = Field(0, ge=0)  # 0: no checkpoints, a killed run starts over
    save_total_limit: int = Field(1, ge=1)  # checkpoints kept; only the newest is resumed
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    # preference_pairs: how many train prompts the SFT adapter answers, and how
    max_pairs: int | None = Field(48, ge=1)  # None: every train prompt
    pair_max_new_tokens: int = Field(160, ge=8)
    pair_temperature: float = Field(0.7, ge=0)
    max_rouge_l: float = Field(0.5, gt=0, le=1)

    def preference_config(self) -> PreferenceConfig:
        """How `preference_pairs` samples the adapter's answers and which pairs it keeps, from this profile."""
        return PreferenceConfig(self.max_rouge_l, self.max_pairs, decoding=DecodingConfig(
            max_new_tokens=self.pair_max_new_tokens, temperature=self.pair_temperature, top_p=0.9, batch_size=4,
            repetition_penalty=PAIR_REPETITION_PENALTY))


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
    resumed_from_step: int = 0  # the checkpoint's step this call continued from; 0: started fresh


def pairs_hash(pairs: list[PreferencePair]) -> str:
    """What a checkpoint's fingerprint records of the data: the DPO rows, in order."""
    text = json.dumps([pair.to_dpo_row() for pair in pairs], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def adapter_digest(adapter_dir: Path) -> str:
    """The SFT adapter's weights, hashed: a checkpoint resumes only on the same starting adapter, wherever it lies."""
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        return str(adapter_dir.resolve())
    digest = hashlib.sha256()
    with weights.open("rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def dpo_args(config: DpoConfig, checkpoints: Path):
    """TRL's DPOConfig for `config`, writing checkpoints under `checkpoints`."""
    import torch
    from trl import DPOConfig

    from moxi_pipeline.models.base import compute_dtype

    on_cpu = config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available())
    return DPOConfig(
        output_dir=str(checkpoints), beta=config.beta, loss_type=[config.loss_type],
        learning_rate=config.learning_rate, lr_scheduler_type=config.lr_scheduler_type, max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps, max_length=config.max_length,
        logging_steps=config.logging_steps, report_to=[],
        save_strategy="steps" if config.save_steps else "no", save_steps=config.save_steps or 500,
        save_total_limit=config.save_total_limit,
        use_cpu=on_cpu,
        # TRL turns bf16 autocast on by default; on a CPU without native bf16 it is emulated (206 s a demo step
        # against 7.4 s with AVX-512 BF16), so it runs only where compute_dtype would hold weights in bf16
        bf16=compute_dtype("cpu" if on_cpu else "cuda") == torch.bfloat16,
    )


def train_dpo(base_model_dir: str | Path, sft_adapter_dir: str | Path, pairs: list[PreferencePair], config: DpoConfig,
              out_dir: str | Path, callbacks: list | None = None,
              checkpoint_store: ArtifactStore | None = None) -> DpoResult:
    """A DPO adapter in `out_dir`, with training_config.json naming its base model, as an SFT adapter has.
    With `config.save_steps`, a second call for the same `out_dir` resumes from the newest checkpoint of this run:
    a local one, else (with `checkpoint_store`) the newest published one."""
    import torch
    from datasets import Dataset
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer

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
    checkpoints = checkpoint_dir_for(out_dir)
    # a checkpoint of another config, other pairs or another SFT adapter is cleared, not resumed
    fingerprint = {**run_fingerprint(config, pairs_hash(pairs)), "sft_adapter": adapter_digest(sft_adapter_dir)}
    published = PublishedCheckpoints(checkpoint_store, f"checkpoints/dpo_adapter/{out_dir.name}") \
        if checkpoint_store and config.save_steps else None
    resume_from = checkpoint_to_resume(checkpoints, fingerprint, True, published) if config.save_steps else None
    # publishing first: a checkpoint is in the store before any later on_save callback can fail
    callbacks = ([published.callback(checkpoints / RUN_FINGERPRINT, keep=config.save_total_limit)] if published else []) \
        + list(callbacks or [])
    args = dpo_args(config, checkpoints)
    dataset = Dataset.from_list([pair.to_dpo_row() for pair in pairs])
    trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=callbacks)
    resumed_step, _ = checkpoint_step(resume_from)  # read now: save_total_limit may delete it during training
    started = time.perf_counter()
    with fused_head_on_labelled_positions():
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    duration_s = time.perf_counter() - started
    staging = staging_dir(out_dir)
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
    shutil.rmtree(checkpoints, ignore_errors=True)  # the adapter is complete: nothing left to resume
    if published:
        published.delete()
    return DpoResult(out_dir, trainer.state.global_step, duration_s, history, resumed_step)


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
