"""What lands beside a trained adapter: the loss plot, training_config.json, train_log.json, the model card."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moxi_pipeline.training.config import TrainConfig, TrainResult


def plot_losses(losses: list[tuple[int, float]], path: Path, eval_loss: float | None) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display on a server or in CI
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5))
    if losses:
        steps, values = zip(*losses)
        axes.plot(steps, values, marker="o", markersize=3, label="train loss")
    if eval_loss is not None:
        axes.axhline(eval_loss, color="tab:red", linestyle="--", label=f"eval loss {eval_loss:.3f}")
    axes.set_xlabel("step")
    axes.set_ylabel("loss (completion tokens)")
    axes.set_title("LoRA training loss")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_records(
    out_dir: Path, base_model_dir, config: TrainConfig, result: TrainResult, history: list, n_train: int, n_eval: int
) -> None:
    """training_config.json, train_log.json and the model card README.md beside the adapter."""
    summary = {
        "config": config.model_dump(mode="json"),
        "dataset_hash": result.dataset_hash,
        # relative to the adapter folder, so moving the data folder keeps the pair together
        "base_model_dir": os.path.relpath(Path(base_model_dir).resolve(), Path(out_dir).resolve()),
        "train_samples": n_train,
        "eval_samples": n_eval,
        "result": {key: value for key, value in asdict(result).items() if key != "losses"},
    }
    (out_dir / "training_config.json").write_text(json.dumps(summary, indent=2))
    (out_dir / "train_log.json").write_text(json.dumps(history, indent=2))
    (out_dir / "README.md").write_text(model_card(base_model_dir, config, result, n_train, n_eval))


def model_card(base_model_dir, config: TrainConfig, result: TrainResult, n_train: int, n_eval: int) -> str:
    final_loss = f"{result.losses[-1][1]:.4f}" if result.losses else "n/a"
    eval_loss = f"{result.eval_loss:.4f}" if result.eval_loss is not None else "n/a"
    settings = "\n".join(f"| `{key}` | `{value}` |" for key, value in config.model_dump(mode="json").items())
    return f"""# Moxi README-writer LoRA adapter

A PEFT LoRA adapter that writes README.md files for software repositories, trained by Moxi
with TRL `SFTTrainer` (loss on the completion only, chat-template prompts from `moxi_pipeline.readme.prompts`).

- Base model: `{base_model_dir}`
- Dataset hash: `{result.dataset_hash}` ({n_train} train samples, {n_eval} eval samples)
- Steps: {result.steps}, {result.train_tokens} tokens in {result.duration_s} s ({result.tokens_per_s} tokens/s)
- Final train loss: {final_loss}; eval loss: {eval_loss}

## Load it

```python
from moxi_pipeline.models.base import load_model, load_tokenizer
model = load_model("{base_model_dir}", adapter_dir="{result.adapter_dir}")
tokenizer = load_tokenizer("{result.adapter_dir}")
```

or with PEFT directly: `PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter_dir)`.

## Training config (profile `{config.profile}`)

| setting | value |
|---|---|
{settings}
"""
