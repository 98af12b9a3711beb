"""The GPU executor: lora_adapter in the `gpu` pool, train_job's launcher tags, the deploy/gpu/ configs checked
against dagster-aws's, dagster-k8s's and the ECS API's own schemas, and a killed lora_adapter run that a
re-execution resumes and publishes to S3 (moto's server)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
import yaml

from moxi_pipeline.records import Artifact
from moxi_pipeline_tests.s3_server import FAKE_KEYS, moto_s3_server
from moxi_pipeline_tests.training.test_train import make_sample

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "gpu"


def test_lora_adapter_runs_in_the_gpu_pool_with_gpu_op_tags():
    from moxi_pipeline.defs.training import lora_adapter

    assert lora_adapter.op.pool == "gpu"
    assert json.loads(lora_adapter.op.tags["dagster-k8s/config"])["container_config"]["resources"]["limits"] == {
        "nvidia.com/gpu": "1"
    }


def test_train_job_selects_lora_adapter_and_carries_the_launcher_tags():
    from moxi_pipeline.definitions import defs
    from moxi_pipeline.defs.jobs import GPU_TASK_DEFINITION

    job = defs.get_job_def("train_job")
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == {"lora_adapter"}
    tags = job.tags
    run_task = json.loads(tags["ecs/run_task_kwargs"])
    assert run_task["taskDefinition"] == GPU_TASK_DEFINITION
    k8s = json.loads(tags["dagster-k8s/config"])
    assert k8s["container_config"]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    # pipeline_job keeps running everything in process, with no launcher tags
    assert "ecs/run_task_kwargs" not in defs.get_job_def("pipeline_job").tags


def test_k8s_tag_is_a_valid_dagster_k8s_config():
    from dagster_k8s.job import UserDefinedDagsterK8sConfig

    from moxi_pipeline.defs.jobs import TRAIN_RUN_TAGS

    config = UserDefinedDagsterK8sConfig.from_dict(TRAIN_RUN_TAGS["dagster-k8s/config"])
    assert config.container_config["resources"]["requests"] == {"nvidia.com/gpu": "1"}
    assert config.pod_spec_config["tolerations"][0]["key"] == "nvidia.com/gpu"


def _launcher(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["run_launcher"]


@pytest.mark.parametrize(
    ("path", "module", "cls"),
    [("ecs/dagster.yaml", "dagster_aws.ecs", "EcsRunLauncher"), ("k8s/dagster.yaml", "dagster_k8s", "K8sRunLauncher")],
)
def test_deploy_launcher_config_passes_the_launchers_own_schema(path, module, cls):
    import importlib

    from dagster._config import process_config
    from dagster._config.field_utils import Shape

    launcher = _launcher(DEPLOY / path)
    assert (launcher["module"], launcher["class"]) == (module, cls)
    launcher_class = getattr(importlib.import_module(module), cls)
    result = process_config(Shape(launcher_class.config_type()), launcher["config"])
    assert result.success, result.errors


def _ecs_input_shape(operation: str):
    import boto3

    client = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client.meta.service_model.operation_model(operation).input_shape


def test_gpu_task_definition_passes_the_ecs_api_schema_and_asks_for_a_gpu():
    from botocore.validate import validate_parameters

    from moxi_pipeline.defs.jobs import GPU_TASK_DEFINITION

    task = json.loads((DEPLOY / "ecs" / "train-gpu-task-definition.json").read_text())
    validate_parameters(task, _ecs_input_shape("RegisterTaskDefinition"))  # raises ParamValidationError
    assert task["family"] == GPU_TASK_DEFINITION
    [container] = task["containerDefinitions"]
    assert container["name"] == _launcher(DEPLOY / "ecs" / "dagster.yaml")["config"]["container_name"]
    assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]


def test_ecs_run_task_call_with_the_train_job_tags_passes_the_ecs_api_schema():
    """What EcsRunLauncher sends for a train_job run: its overrides, then the tag's run_task kwargs on top."""
    from botocore.validate import validate_parameters

    from moxi_pipeline.defs.jobs import TRAIN_RUN_TAGS

    cpu, memory = TRAIN_RUN_TAGS["ecs/cpu"], TRAIN_RUN_TAGS["ecs/memory"]
    call = {
        "cluster": "moxi", "taskDefinition": "moxi-run-default", "launchType": "FARGATE",
        "overrides": {"containerOverrides": [{"name": "run", "command": ["dagster", "api", "execute_run"],
                                              "cpu": int(cpu), "memory": int(memory)}], "cpu": cpu, "memory": memory},
        **json.loads(TRAIN_RUN_TAGS["ecs/run_task_kwargs"]),
    }
    del call["launchType"]  # the launcher drops launchType when a capacityProviderStrategy is set
    validate_parameters(call, _ecs_input_shape("RunTask"))
    # the run may not ask for more than the GPU task definition reserves
    task = json.loads((DEPLOY / "ecs" / "train-gpu-task-definition.json").read_text())
    assert (int(cpu), int(memory)) <= (int(task["cpu"]), int(task["memory"]))


# ---- a killed lora_adapter run, re-executed: same folder, resumed, published to S3 --------------


class Killed(Exception):
    pass


def _write_inputs(data_dir: Path, tiny_model_dir) -> None:
    from moxi_pipeline.storage import LocalStore

    store = LocalStore(data_dir)
    store.write_json("base_model", Artifact(name="base_model", path=str(tiny_model_dir), metadata={}).to_dict())
    samples = [make_sample(i).model_copy(update={"split": "test" if i == 0 else "train"}) for i in range(6)]
    store.write_records("sft_dataset", [sample.to_dict() for sample in samples])


def test_s3_reexecuted_lora_adapter_resumes_in_its_run_folder_and_publishes(tmp_path, tiny_model_dir, monkeypatch):
    from moxi_pipeline.defs import collect, dataset, evaluation, export, preferences, training
    from moxi_pipeline.defs.io_managers import LocalRecordIOManager
    from moxi_pipeline.defs.resources import ArtifactsResource, OpenAIClient

    data_dir = tmp_path / "data"
    _write_inputs(data_dir, tiny_model_dir)
    real_train = training.train_adapter
    calls: list[int] = []

    def train_killed_first(*args, progress=None, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            def progress(logs):
                if logs["step"] == 3:
                    raise Killed("the GPU node went away")
        return real_train(*args, progress=progress, **kwargs)

    monkeypatch.setattr(training, "train_adapter", train_killed_first)
    for name, value in FAKE_KEYS.items():
        monkeypatch.setenv(name, value)
    # any profile field can be overridden in run config: a checkpoint every 2 steps, a step per sample
    overrides = {"save_steps": "2", "logging_steps": "1", "gradient_accumulation_steps": "1", "max_eval_samples": "1"}
    run_config = {"ops": {"lora_adapter": {"config": {"profile": "demo", "max_steps": 4, "max_length": 256,
                                                      "device": "cpu", "overrides": overrides}}}}
    instance = dg.DagsterInstance.ephemeral()
    with moto_s3_server() as endpoint:
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="moxi-runs")
        resources = {"io_manager": LocalRecordIOManager(data_dir=str(data_dir)),
                     "artifacts": ArtifactsResource(data_dir=str(data_dir), s3_bucket="moxi-runs", aws_endpoint_url=endpoint),
                     "openai": OpenAIClient(api_key="")}
        # only lora_adapter runs; base_model and sft_dataset load from the records written above
        assets = dg.load_assets_from_modules([collect, dataset, training, preferences, evaluation, export])
        first = dg.materialize(assets, selection=[training.lora_adapter], resources=resources,
                               run_config=run_config, instance=instance, raise_on_error=False)
        assert not first.success
        adapters = data_dir / "models" / "lora_adapter"
        [checkpoints] = adapters.glob(".*.checkpoints")
        assert sorted(p.name for p in checkpoints.glob("checkpoint-*")) == ["checkpoint-2"]
        second = dg.materialize(assets, selection=[training.lora_adapter], resources=resources,
                                run_config=run_config, instance=instance,
                                tags={"dagster/root_run_id": first.run_id, "dagster/parent_run_id": first.run_id})
        assert second.success
        meta = second.asset_materializations_for_node("lora_adapter")[0].metadata
        run_folder = (adapters / "LATEST").read_text().strip()
        assert run_folder.endswith(first.run_id[:8]) and checkpoints.name == f".{run_folder}.checkpoints"
        assert meta["resumed_from_step"].value == 2 and meta["steps"].value == 4
        uri = meta["adapter_uri"].value
        assert uri == f"s3://moxi-runs/moxi/models/lora_adapter/{run_folder}"
        listing = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket="moxi-runs")
        keys = {item["Key"].rsplit("/", 1)[-1] for item in listing["Contents"]}
        assert {"adapter_model.safetensors", "adapter_config.json", "_manifest.json"} <= keys
        assert not any(key.endswith((".bin", ".pt", ".pth")) for key in keys)
        # no secret reaches the run's metadata
        assert FAKE_KEYS["AWS_SECRET_ACCESS_KEY"] not in json.dumps({k: str(v.value) for k, v in meta.items()})
