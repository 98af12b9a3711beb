"""LoRA fine-tuning, thin over TRL's `SFTTrainer` + PEFT.

One entry point, `train_adapter`: tokenize the SFT samples through the chat template (the same one
`moxi generate` uses), build `SFTConfig` + `SFTTrainer(peft_config=LoraConfig(...))`, `train()`,
`save_model()`, then write the model card, config, log and loss plot next to the adapter.

Samples are tokenized by `tokenize.tokenize_sample` (the one tokenization that evaluation's loss uses
too), not by TRL, for truncation's sake: see that module. TRL builds the labels from our
`completion_mask` (`completion_only_loss=True`).

Checkpoints: with `save_steps` set, the Trainer saves every N steps into `.<run>.checkpoints/` beside the
run folder, with a `moxi_run.json` fingerprint (config + dataset hash). Called again for the same run
folder (a killed materialization re-executed), training resumes from the newest checkpoint: weights,
optimizer, scheduler, RNG states and data position, so it continues at the step after it. A folder whose
fingerprint differs is cleared and training starts over. The checkpoints are removed once the adapter is
published. With a `checkpoint_store` (S3), each checkpoint is also published as plain files (see
`checkpoints.py`: the torch pickles become JSON + safetensors) under `checkpoints/<run folder name>/`, and a
call that finds no local checkpoint (a fresh node) resumes from the newest published one of the same run.

Multi-GPU: `accelerate launch -m moxi_pipeline.training.train ...` (see `main`) runs one process per GPU under DDP;
only the first process writes the adapter folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from moxi_pipeline.records import SftSample
from moxi_pipeline.storage.artifacts import ArtifactStore
from moxi_pipeline.training.adapter_card import plot_losses, write_records
from moxi_pipeline.training.backends import (
    import_backend,
    load_for_training,
    lora_config,
)
from moxi_pipeline.training.budget import budget_callback
from moxi_pipeline.training.checkpoints import RUN_FINGERPRINT, PublishedCheckpoints
from moxi_pipeline.training.config import (
    CONFIGS_DIR,
    GPU_INSTALL_HINT,
    TrainConfig,
    TrainResult,
    available_profiles,
    check_runtime,
    describe_errors,
    load_train_config,
    resolve_backend,
)
from moxi_pipeline.training.tokenize import tokenize_sample

log = logging.getLogger(__name__)

__all__ = [
    "CONFIGS_DIR", "GPU_INSTALL_HINT", "TrainConfig", "TrainResult", "available_profiles", "check_runtime",
    "describe_errors", "load_train_config", "lora_config", "train_adapter",
]

def build_dataset(tokenizer, samples: list[SftSample], config: TrainConfig):
    from datasets import Dataset

    rows = [tokenize_sample(tokenizer, s, config.max_length, config.min_completion_tokens) for s in samples]
    return Dataset.from_list(rows)


def sft_config(config: TrainConfig, out_dir: Path, device: str, has_eval: bool):
    import torch
    from trl import SFTConfig

    from moxi_pipeline.models.base import compute_dtype

    # autocast on a GPU only: on a CPU the weights are already in compute_dtype's choice (see `bf16=` below)
    on_gpu_bf16 = device == "cuda" and (config.quantization == "4bit" or
                                        compute_dtype(device, config.dtype) == torch.bfloat16)
    eval_during = has_eval and config.eval_steps is not None
    early_stopping = eval_during and config.early_stopping_patience is not None
    return SFTConfig(
        output_dir=str(out_dir),  # checkpoints only; the adapter is saved by save_model()
        max_steps=config.max_steps or -1,  # -1: num_train_epochs decides
        num_train_epochs=config.num_train_epochs or 1.0,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_steps,
        logging_steps=config.logging_steps,
        seed=config.seed,
        data_seed=config.seed,  # same shuffling on every run, and after a resume
        # Samples are already fitted by fit_to_length, so TRL's cut is a no-op; with packing max_length is the
        # packed row's length, and padding-free without packing takes None (TRL refuses a limit it can't enforce).
        max_length=None if config.padding_free and not config.packing else config.max_length,
        completion_only_loss=True,  # labels = -100 wherever our completion_mask is 0
        packing=config.packing,
        padding_free=config.padding_free,
        activation_checkpointing=config.gradient_checkpointing,
        # On CPU the weights are already in config.dtype; autocast on top only adds casts.
        bf16=on_gpu_bf16,
        use_cpu=device == "cpu",
        optim="paged_adamw_8bit" if config.quantization == "4bit" else "adamw_torch",
        include_num_input_tokens_seen="non_padding",
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 500,
        save_total_limit=config.save_total_limit,
        eval_strategy="steps" if eval_during else "no",
        eval_steps=config.eval_steps,
        load_best_model_at_end=early_stopping,  # early stopping keeps the best checkpoint, not the last
        metric_for_best_model="eval_loss" if early_stopping else None,
        greater_is_better=False if early_stopping else None,
        report_to=list(config.report_to) or "none",  # TensorBoard writes under output_dir/runs/
        disable_tqdm=True,
        dataloader_pin_memory=device == "cuda",
        ddp_find_unused_parameters=False,  # LoRA under DDP: every trainable parameter gets a gradient
    )


def progress_callback(progress: Callable[[dict], None]):
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            progress({"step": state.global_step, "max_steps": state.max_steps, **(logs or {})})

    return ProgressCallback()


def checkpoint_dir_for(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    return out_dir.with_name(f".{out_dir.name}.checkpoints")


def run_fingerprint(config: TrainConfig, dataset_hash: str) -> dict:
    """What a checkpoint must match to be resumed: the config (less the wall-clock budget, which a re-run on a
    slower or faster machine may change without changing the training) and the dataset."""
    return {"config": config.model_dump(mode="json", exclude={"max_train_minutes"}), "dataset_hash": dataset_hash}


def latest_checkpoint(checkpoints: Path, fingerprint: dict, main_process: bool = True) -> Path | None:
    """The newest `checkpoint-<step>` of this same run, or None; a different run's checkpoints are cleared.

    Under DDP every process asks; only the first clears or writes, the others read what it decided.
    """
    from transformers.trainer_utils import get_last_checkpoint

    record = checkpoints / RUN_FINGERPRINT
    same_run = record.is_file() and json.loads(record.read_text()) == fingerprint
    if not same_run and main_process:
        shutil.rmtree(checkpoints, ignore_errors=True)  # another config or dataset: its optimizer state does not apply
        checkpoints.mkdir(parents=True)
        record.write_text(json.dumps(fingerprint, indent=2))
    last = get_last_checkpoint(str(checkpoints)) if same_run else None
    return Path(last) if last else None


def checkpoint_to_resume(checkpoints: Path, fingerprint: dict, main_process: bool,
                         published: PublishedCheckpoints | None) -> Path | None:
    """The newest local checkpoint of this run; without one, the newest published one, fetched by the first process."""
    local = latest_checkpoint(checkpoints, fingerprint, main_process)
    if local or published is None or not main_process:
        return local
    return published.restore(fingerprint, checkpoints)


def checkpoint_step(checkpoint: Path | None) -> tuple[int, int]:
    """(global step, input tokens seen) recorded in a checkpoint's trainer_state.json; (0, 0) for none."""
    if checkpoint is None:
        return 0, 0
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return int(state["global_step"]), int(state.get("num_input_tokens_seen") or 0)


def peak_memory_mb(device: str) -> float:
    if device == "cuda":
        import torch

        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux reports KiB


def allocator() -> str:
    """The malloc this process runs under: "jemalloc" when LD_PRELOAD brought it in, else "glibc"."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux
        return "unknown"
    return "jemalloc" if "libjemalloc" in maps else "glibc"


def warn_about_allocator(device: str) -> str:
    name = allocator()
    if device == "cpu" and name == "glibc":
        log.warning("training on the CPU under glibc's malloc: resident memory grows ~200 MB a step and steps slow "
                    "as the heap fragments; run with LD_PRELOAD=<path to libjemalloc.so.2> (Debian's libjemalloc2; "
                    "make demo and make dev set it) to keep it flat (docs/training.md)")
    return name


def callbacks_for(config: TrainConfig, progress, has_eval: bool) -> list:
    from transformers import EarlyStoppingCallback

    callbacks = [progress_callback(progress)] if progress else []
    if has_eval and config.eval_steps and config.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    return callbacks


def train_adapter(
    base_model_dir: str | Path,
    train: list[SftSample],
    eval: list[SftSample],
    config: TrainConfig,
    out_dir: str | Path,
    dataset_hash: str,
    progress: Callable[[dict], None] | None = None,
    checkpoint_store: ArtifactStore | None = None,
) -> TrainResult:
    """Train a LoRA adapter on `train`, measure loss on `eval`, and save everything into `out_dir`.

    Everything is written into a temporary folder beside `out_dir`, renamed to `out_dir` once complete:
    a crash never leaves a half-written adapter folder that looks like a finished one. With
    `config.save_steps`, a second call for the same `out_dir` resumes from the newest checkpoint; with a
    `checkpoint_store` too, each checkpoint is published there and a call on another machine resumes from it.
    """
    from moxi_pipeline.models.base import publish_dir, resolve_device, staging_dir

    if not train:
        raise ValueError("train: no SFT samples to train on (the train split is empty)")
    device = resolve_device(config.device)
    check_runtime(config, device)
    eval = eval[: config.max_eval_samples] if config.max_eval_samples else eval
    if config.early_stopping_patience and not eval:
        raise ValueError("early_stopping_patience is set but there are no eval samples to stop on")
    backend = resolve_backend(config, device)
    malloc = warn_about_allocator(device)
    # Unsloth, when chosen, is imported before trl/transformers/peft
    sft_trainer = import_backend(backend, config.completion_logits_only)
    final_dir = Path(out_dir)
    main_process = int(os.environ.get("RANK", "0")) == 0
    checkpoints = checkpoint_dir_for(final_dir)
    # the budget changes when training stops, not what a step computes: a resumed run may change it
    fingerprint = run_fingerprint(config, dataset_hash)
    published = None
    if checkpoint_store and config.save_steps:
        published = PublishedCheckpoints(checkpoint_store, f"checkpoints/{final_dir.name}")
    args = sft_config(config, checkpoints, device, has_eval=bool(eval))
    # under DDP the first process decides (and fetches), then the others find its choice on disk
    with args.main_process_first(local=False, desc="finding the checkpoint to resume"):
        resume_from = checkpoint_to_resume(checkpoints, fingerprint, main_process, published) if config.save_steps else None
    callbacks = callbacks_for(config, progress, bool(eval))
    budget = budget_callback(config.max_train_minutes) if config.max_train_minutes else None
    if budget:
        callbacks.append(budget)
    if published:
        callbacks.append(published.callback(checkpoints / RUN_FINGERPRINT, keep=config.save_total_limit))
    model, tokenizer, peft_config = load_for_training(base_model_dir, config, device, backend)
    trainer = sft_trainer(
        model=model,
        args=args,
        train_dataset=build_dataset(tokenizer, train, config),
        eval_dataset=build_dataset(tokenizer, eval, config) if eval else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    resumed_step, resumed_tokens = checkpoint_step(resume_from)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    duration_s = time.perf_counter() - started
    eval_loss = trainer.evaluate()["eval_loss"] if eval else None
    staging = staging_dir(final_dir) if main_process else final_dir
    trainer.save_model(str(staging))  # on every process (DDP/FSDP gather), written by the first
    history = trainer.state.log_history
    losses = [(entry["step"], float(entry["loss"])) for entry in history if "loss" in entry]
    train_tokens = int(trainer.state.num_input_tokens_seen)
    session_tokens = train_tokens - resumed_tokens
    result = TrainResult(
        adapter_dir=str(final_dir),
        steps=trainer.state.global_step,
        duration_s=round(duration_s, 2),
        train_tokens=train_tokens,
        tokens_per_s=round(session_tokens / duration_s, 1) if duration_s > 0 else 0.0,
        losses=losses,
        eval_loss=eval_loss,
        loss_plot=str(final_dir / "loss_curve.png"),
        dataset_hash=dataset_hash,
        resumed_from_step=resumed_step,
        peak_memory_mb=peak_memory_mb(device),
        eval_losses=[(entry["step"], float(entry["eval_loss"])) for entry in history if "eval_loss" in entry],
        steps_planned=trainer.state.max_steps,
        stopped_by_budget=bool(budget and budget.stopped_by_budget),
        allocator=malloc,
        dtype=str(getattr(model, "dtype", "")).removeprefix("torch."),
    )
    if main_process:
        tokenizer.save_pretrained(str(staging))
        # save_model also pickles TrainingArguments; training_config.json records the same settings as JSON.
        (staging / "training_args.bin").unlink(missing_ok=True)
        plot_losses(losses, staging / "loss_curve.png", eval_loss)
        if (checkpoints / "runs").is_dir():  # TensorBoard event files outlive the checkpoints
            shutil.copytree(checkpoints / "runs", staging / "tensorboard", dirs_exist_ok=True)
        write_records(staging, base_model_dir, config, result, history, len(train), len(eval))
        publish_dir(staging, final_dir)
        shutil.rmtree(checkpoints, ignore_errors=True)  # the adapter is complete: nothing left to resume
        if published:
            published.delete()
    return result


def main(argv: list[str] | None = None) -> int:
    """`python -m moxi_pipeline.training.train` / `accelerate launch -m moxi_pipeline.training.train`: train outside Dagster.

    Reads the SFT dataset records the sft_dataset asset wrote (data/records/sft_dataset.jsonl, or its
    dataset folder data/sft/...), so a multi-GPU run trains on exactly what the pipeline built.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m moxi_pipeline.training.train", description=main.__doc__)
    parser.add_argument("--profile", required=True, help=f"one of {', '.join(available_profiles())}")
    parser.add_argument("--base-model", required=True, help="a local model folder (safetensors + tokenizer)")
    parser.add_argument("--dataset", required=True,
                        help="sft_dataset records (JSON Lines of SftSample), or the dataset folder it wrote (Alpaca JSON)")
    parser.add_argument("--out", required=True, help="the adapter folder to write (resumes if checkpoints exist)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a profile field (YAML value), e.g. --set max_steps=200")
    args = parser.parse_args(argv)
    import yaml
    from pydantic import ValidationError

    from moxi_pipeline.dataset.samples import dataset_hash, load_sft_dataset
    from moxi_pipeline.storage.jsonl import json_lines, parse_json_line, read_text

    overrides = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: expected FIELD=VALUE")
        overrides[name] = yaml.safe_load(value)
    try:
        config = load_train_config(args.profile, **overrides)
        if Path(args.dataset).is_dir():
            samples = load_sft_dataset(Path(args.dataset))
        else:
            samples = []
            for number, line in json_lines(read_text(args.dataset)):  # "\n" only: U+2028 stays inside its string
                row = parse_json_line(line, args.dataset, number)
                try:
                    samples.append(SftSample.model_validate(row))
                except ValidationError as error:
                    raise ValueError(f"{args.dataset} line {number}: not an SFT sample ({error.errors()[0]['msg']})") from None
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"moxi train: {error}\n")

    result = train_adapter(
        args.base_model, [s for s in samples if s.split == "train"], [s for s in samples if s.split == "test"],
        config, args.out, dataset_hash(samples), progress=lambda logs: print(f"train {logs}", flush=True),
    )
    print(f"wrote {result.adapter_dir}: {result.steps} steps, eval loss {result.eval_loss}, {result.tokens_per_s} tokens/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
