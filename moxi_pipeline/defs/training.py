"""The training phase's wiring: base_model -> lora_adapter."""

import time

import dagster as dg
import yaml
from pydantic import Field

from moxi_pipeline.dataset.samples import dataset_hash
from moxi_pipeline.defs.metadata import image
from moxi_pipeline.defs.resources import ArtifactsResource
from moxi_pipeline.models.base import import_base_model
from moxi_pipeline.records import Artifact, SftSample
from moxi_pipeline.settings import load_settings
from moxi_pipeline.training.config import trackers
from moxi_pipeline.training.train import load_train_config, train_adapter

SETTINGS = load_settings()
# Training takes a slot of the Dagster concurrency pool `gpu` (MOXI_GPU_POOL renames it); dagster.yaml limits
# the pool to 1, so two trainings never share a GPU. A pool without a limit runs unlimited, as on a laptop.
# The op tags ask a step-per-pod executor (k8s_job_executor) for a GPU; train_job carries the run-level tags.
GPU_POOL = SETTINGS.gpu_pool or "gpu"
GPU_TAGS = {"moxi/device": "gpu", "dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}}


class BaseModelConfig(dg.Config):
    source: str = Field(default=SETTINGS.base_model, description="'embedded' (SmolLM2-135M GGUF), 'gemma3-270m' (the gemma extra), "
                        "a HF id or a local path")


@dg.asset(group_name="model", kinds={"pytorch"})
def base_model(context: dg.AssetExecutionContext, config: BaseModelConfig, artifacts: ArtifactsResource) -> Artifact:
    """The base model as plain safetensors plus tokenizer, ready to train on."""
    info = import_base_model(config.source, artifacts.path("models", "base_model"))
    context.add_output_metadata({"parameters": info.parameters, "dtype": info.dtype, "source": info.source,
                                 "architecture": info.architecture, "path": dg.MetadataValue.path(info.path)})
    return Artifact(name="base_model", path=info.path, metadata={"source": info.source, "parameters": info.parameters})


class LoraAdapterConfig(dg.Config):
    profile: str = Field(default=SETTINGS.train_profile, description="configs/train_<profile>.yaml: demo | cpu | gpu-3b | gpu-7b")
    max_steps: int | None = Field(default=None, description="override the profile's max_steps")
    lora_r: int | None = Field(default=None, description="override the profile's LoRA rank")
    learning_rate: float | None = Field(default=None, description="override the profile's learning rate")
    max_length: int | None = Field(default=None, description="override the profile's sequence length in tokens")
    device: str | None = Field(default=None, description="auto | cpu | cuda (default: MOXI_TRAIN_DEVICE)")
    overrides: dict[str, str] = Field(default={}, description="any other profile field, its value in YAML: "
                                      "{save_steps: '50', packing: 'true', target_modules: '[q_proj, v_proj]'}")


@dg.asset(group_name="model", kinds={"pytorch"}, pool=GPU_POOL, op_tags=GPU_TAGS)
def lora_adapter(
    context: dg.AssetExecutionContext,
    config: LoraAdapterConfig,
    artifacts: ArtifactsResource,
    base_model: Artifact,
    sft_dataset: list[SftSample],
) -> Artifact:
    """A PEFT LoRA adapter trained with TRL's SFTTrainer on the training split.

    The run folder is named after the Dagster run that first tried it (the root run): re-executing a killed
    or failed run trains into the same folder and resumes from its newest checkpoint, on the same disk or,
    with an S3 bucket, from the checkpoints published there (a fresh pod or node).
    """
    overrides = {k: yaml.safe_load(v) for k, v in config.overrides.items()}
    overrides |= {k: v for k, v in config.model_dump().items() if k not in ("profile", "overrides") and v is not None}
    report_to = trackers(SETTINGS.wandb_api_key is not None, SETTINGS.comet_api_key is not None)
    train_config = load_train_config(config.profile, **{"device": SETTINGS.train_device, "report_to": report_to,
                                                        **overrides})
    run_id = run_folder_name(context)
    out_dir = artifacts.path("models", "lora_adapter", run_id)
    result = train_adapter(
        base_model.path,
        [s for s in sft_dataset if s.split == "train"],
        [s for s in sft_dataset if s.split == "test"],
        train_config,
        out_dir,
        dataset_hash=dataset_hash(sft_dataset),
        progress=lambda logs: context.log.info(f"train {logs}"),
        checkpoint_store=artifacts.checkpoint_store(),
    )
    artifacts.path("models", "lora_adapter", "LATEST").write_text(run_id + "\n")
    uri = artifacts.publish(result.adapter_dir, f"models/lora_adapter/{run_id}")
    context.add_output_metadata({
        "steps": result.steps, "duration_s": round(result.duration_s, 1), "tokens_per_s": round(result.tokens_per_s, 1),
        "steps_planned": result.steps_planned, "stopped_by_budget": result.stopped_by_budget,
        "train_tokens": result.train_tokens, "final_loss": result.losses[-1][1] if result.losses else float("nan"),
        "eval_loss": result.eval_loss if result.eval_loss is not None else float("nan"),
        "resumed_from_step": result.resumed_from_step, "peak_memory_mb": result.peak_memory_mb,
        "allocator": result.allocator, "dtype": result.dtype, "profile": config.profile, "loss_curve": image(result.loss_plot, "training loss"),
        "adapter_dir": dg.MetadataValue.path(result.adapter_dir), "adapter_uri": uri,
    })
    return Artifact(name="lora_adapter", path=result.adapter_dir,
                    metadata={"run_id": run_id, "dataset_hash": result.dataset_hash, "steps": result.steps,
                              "profile": config.profile, "uri": uri})


def run_folder_name(context: dg.AssetExecutionContext) -> str:
    """`<root run start>-<root run id[:8]>`: the same for a run and every re-execution of it."""
    root_id = context.run.tags.get("dagster/root_run_id", context.run_id)
    record = context.instance.get_run_record_by_id(root_id)
    started = record.create_timestamp.astimezone() if record else None
    return f"{started:%Y%m%d-%H%M%S}-{root_id[:8]}" if started else f"{time.strftime('%Y%m%d-%H%M%S')}-{root_id[:8]}"
