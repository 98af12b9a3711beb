"""Jobs and schedules: re-collect on a schedule, run the whole graph, or train on GPU infrastructure."""

import json

import dagster as dg

from moxi_pipeline.settings import load_settings

collect_job = dg.define_asset_job(
    "collect_job", selection=dg.AssetSelection.assets("raw_readmes"), description="Re-collect READMEs."
)
pipeline_job = dg.define_asset_job(
    "pipeline_job", selection=dg.AssetSelection.all(), description="Collect, chunk, build the dataset, train, evaluate."
)

# What a train_job run asks of the run launcher; a launcher that does not know a tag ignores it, so the
# in-process default still runs the job locally. deploy/gpu/ holds launcher configs that read them.
GPU_TASK_DEFINITION = "moxi-train-gpu"  # deploy/gpu/ecs/train-gpu-task-definition.json: 1 GPU, container "run"
GPU_CAPACITY_PROVIDER = "moxi-gpu"  # an ECS capacity provider over a GPU instance Auto Scaling group
TRAIN_RUN_TAGS = {
    # dagster-aws EcsRunLauncher: run_task kwargs from this tag win over its own, so the run starts from the
    # GPU task definition on GPU instances; cpu/memory override the task's size (a g5.2xlarge: 8 vCPU, 32 GiB).
    "ecs/run_task_kwargs": json.dumps({
        "taskDefinition": GPU_TASK_DEFINITION,
        "capacityProviderStrategy": [{"capacityProvider": GPU_CAPACITY_PROVIDER, "weight": 1}],
    }),
    "ecs/cpu": "7168",
    "ecs/memory": "28672",
    # dagster-k8s K8sRunLauncher: the run pod asks for one NVIDIA GPU and tolerates the GPU nodes' taint.
    "dagster-k8s/config": {
        "container_config": {
            "resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}},
        },
        "pod_spec_config": {
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
    },
}
train_job = dg.define_asset_job(
    "train_job",
    selection=dg.AssetSelection.assets("lora_adapter"),
    tags=TRAIN_RUN_TAGS,
    description="Train the LoRA adapter; on ECS or Kubernetes the run launches on a GPU (deploy/gpu/).",
)

# MOXI_COLLECT_CRON, by default weekly at 03:00 on Monday; stopped until someone turns it on in the UI.
# Re-collecting is incremental: the github source skips repositories whose head commit is unchanged.
recollect_schedule = dg.ScheduleDefinition(job=collect_job, cron_schedule=load_settings().collect_cron,
                                          name="recollect_schedule", execution_timezone="UTC")
