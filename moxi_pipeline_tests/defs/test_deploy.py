"""How Moxi runs as a team would: .env.example, docker-compose.yml, the Dagster instance and workspace files,
the `dg` project config, and the scale-out configs in deploy/. No Docker engine is needed: the YAML is parsed
and checked here, and `docker compose config` (or `docker-compose config`) runs when a compose CLI is installed.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import tomllib
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dotenv import dotenv_values

from moxi_pipeline.settings import Settings, env_name, load_settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_VARIABLES = {env_name(name) for name in Settings.model_fields}
# Variables Moxi's containers get that third-party code reads, not moxi_pipeline.settings:
THIRD_PARTY_VARIABLES = {
    "DAGSTER_HOME",  # Dagster: the instance folder holding dagster.yaml
    # Dagster: the `env:` values of deploy/*/dagster.yaml's PostgreSQL storage
    "DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_PORT", "DAGSTER_POSTGRES_USER", "DAGSTER_POSTGRES_PASSWORD", "DAGSTER_POSTGRES_DB",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",  # boto3: the S3 (MinIO) credentials
}
# Variables only docker compose reads from .env, to fill in the service images' own variables.
COMPOSE_ONLY_VARIABLES = {"MONGO_ROOT_USER", "MONGO_ROOT_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"}
# What each third-party image reads (from its documentation).
IMAGE_VARIABLES = {
    "postgres": {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"},
    "mongo": {"MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD"},
    "minio/minio": {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"},
    "minio/mc": {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "MOXI_S3_BUCKET"},  # read by its own shell command
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|_URI$")
COMPOSE_PASSWORDS = {"MONGO_ROOT_PASSWORD": "mongo-pass-1", "MINIO_ROOT_PASSWORD": "minio-pass-1",
                     "DAGSTER_POSTGRES_PASSWORD": "postgres-pass-1"}


def _yaml(path: str):
    return yaml.safe_load((ROOT / path).read_text())


def _env_example_names() -> set[str]:
    """Every variable .env.example sets or shows commented out (`# NAME=...`)."""
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE))


# --- .env.example -----------------------------------------------------------------------------------


def test_env_example_lists_every_variable_the_code_reads_and_nothing_else():
    names = _env_example_names()
    assert SETTINGS_VARIABLES - names == set(), "settings missing from .env.example"
    assert {"DAGSTER_HOME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= names
    assert names - SETTINGS_VARIABLES - THIRD_PARTY_VARIABLES - COMPOSE_ONLY_VARIABLES == set(), "read by nothing"


def test_env_example_as_is_gives_valid_settings():
    values = {key: value for key, value in dotenv_values(ROOT / ".env.example").items() if value is not None}
    settings = load_settings(env=values)
    assert (settings.collect_source, settings.train_profile, settings.mongodb_uri) == ("installed", "demo", None)


# --- docker-compose.yml -------------------------------------------------------------------------------

COMPOSE = _yaml("docker-compose.yml")
SERVICES = COMPOSE["services"]
MOXI_SERVICES = sorted(name for name, service in SERVICES.items() if "build" in service)


def test_compose_has_the_stack():
    assert set(SERVICES) == {"moxi-code", "webserver", "daemon", "trainer", "postgres", "mongodb", "minio", "minio-init"}
    assert MOXI_SERVICES == ["daemon", "moxi-code", "trainer", "webserver"]
    assert SERVICES["webserver"]["command"][0] == "dagster-webserver"
    assert SERVICES["daemon"]["command"][:2] == ["dagster-daemon", "run"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_compose_publishes_ports_on_localhost_only(name):
    for binding in SERVICES[name].get("ports", []):
        assert binding.startswith("127.0.0.1:"), f"{name} publishes {binding} beyond this machine"


def test_compose_keeps_the_database_and_the_code_server_off_the_host():
    assert "ports" not in SERVICES["postgres"] and "ports" not in SERVICES["moxi-code"]
    assert [p.split(":")[1] for p in SERVICES["webserver"]["ports"]] == ["3000"]


@pytest.mark.parametrize("name", MOXI_SERVICES)
def test_every_variable_a_moxi_container_gets_is_one_the_code_reads(name):
    unknown = set(SERVICES[name]["environment"]) - SETTINGS_VARIABLES - THIRD_PARTY_VARIABLES
    assert unknown == set()


@pytest.mark.parametrize("name", sorted(set(SERVICES) - set(MOXI_SERVICES)))
def test_every_variable_a_service_image_gets_is_one_it_reads(name):
    image = SERVICES[name]["image"].split(":")[0]
    assert set(SERVICES[name].get("environment", {})) <= IMAGE_VARIABLES[image]


def test_compose_credentials_come_from_env_and_passwords_are_required():
    text = (ROOT / "docker-compose.yml").read_text()
    assert set(re.findall(r"\$\{([A-Z0-9_]+)", text)) <= _env_example_names()
    for name, service in SERVICES.items():
        for key, value in service.get("environment", {}).items():
            if SECRET_NAME.search(key) and value:
                assert "${" in value, f"{name}: {key} is written in the file"
            if "PASSWORD" in key or key in {"AWS_SECRET_ACCESS_KEY", "MONGODB_URI"}:
                assert ":?set it in .env}" in value, f"{name}: {key} has a default password"


def test_mongodb_requires_authentication_and_the_uri_carries_it():
    assert "MONGO_INITDB_ROOT_PASSWORD" in SERVICES["mongodb"]["environment"]
    uri = SERVICES["moxi-code"]["environment"]["MONGODB_URI"]
    assert uri.startswith("mongodb://${MONGO_ROOT_USER:-moxi}:${MONGO_ROOT_PASSWORD:?") and uri.endswith("@mongodb:27017/?authSource=admin")


def test_minio_init_creates_the_artifact_bucket_once_healthy():
    init = SERVICES["minio-init"]
    assert init["depends_on"] == {"minio": {"condition": "service_healthy"}}
    assert 'mc mb --ignore-existing "local/$$MOXI_S3_BUCKET"' in init["command"][0]
    assert SERVICES["moxi-code"]["depends_on"]["minio-init"] == {"condition": "service_completed_successfully"}
    assert SERVICES["moxi-code"]["environment"]["AWS_ENDPOINT_URL"] == "http://minio:9000"


def test_the_gpu_trainer_is_optional_and_reserves_one_nvidia_gpu():
    trainer = SERVICES["trainer"]
    assert trainer["profiles"] == ["gpu"]
    assert trainer["deploy"]["resources"]["reservations"]["devices"] == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert trainer["environment"]["MOXI_GPU_POOL"] == "gpu" and trainer["environment"]["MOXI_TRAIN_DEVICE"] == "cuda"
    assert trainer["build"]["args"]["EXTRAS"] == "deploy,gpu"  # the gpu profile's 4-bit QLoRA needs bitsandbytes
    assert 'RUN pip install ".[$EXTRAS]"' in (ROOT / "Dockerfile").read_text()


def test_compose_volumes_and_mounted_files_exist():
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).is_file(), f"{name} mounts missing {source}"
            else:
                assert source in COMPOSE["volumes"], f"{name} uses undeclared volume {source}"
    mounted = _yaml("deploy/dagster.postgres.yaml")
    assert "postgres" in mounted["storage"]


def test_dockerfile_bakes_the_workspace_that_points_at_the_code_server():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+)", dockerfile, flags=re.MULTILINE):
        assert (ROOT / source).exists(), source
    assert "COPY deploy/workspace.compose.yaml /opt/dagster/workspace.yaml" in dockerfile
    (server,) = [entry["grpc_server"] for entry in _yaml("deploy/workspace.compose.yaml")["load_from"]]
    assert (server["host"], server["port"]) == ("moxi-code", 4000)
    assert '"-p", "4000", "-m", "moxi_pipeline.definitions"' in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", "data", ".venv", ".dagster_home"} <= set(ignored)


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_config_validates_and_refuses_to_start_without_passwords(tmp_path):
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no compose CLI (docker compose or Debian's docker-compose): the YAML checks above still ran")
    env = {key: value for key, value in os.environ.items() if key not in COMPOSE_PASSWORDS}
    empty = tmp_path / "empty.env"
    empty.write_text("")
    command = [*cli, "--env-file", str(empty), "-f", str(ROOT / "docker-compose.yml"), "--profile", "gpu", "config"]
    refused = subprocess.run(command, capture_output=True, text=True, env=env)
    assert refused.returncode != 0 and "set it in .env" in refused.stderr + refused.stdout
    accepted = subprocess.run(command, capture_output=True, text=True, env={**env, **COMPOSE_PASSWORDS})
    assert accepted.returncode == 0, accepted.stderr
    assert "mongodb://moxi:mongo-pass-1@mongodb:27017/?authSource=admin" in accepted.stdout


# --- Dagster instance, workspace and dg --------------------------------------------------------------


def test_local_dagster_yaml_monitors_retries_and_gives_the_gpu_pool_one_slot(tmp_path):
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert instance.run_monitoring_enabled and instance.run_retries_enabled
        assert (instance.run_retries_max_retries, instance.run_retries_retry_on_asset_or_op_failure) == (2, False)
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        # A pool takes dagster.yaml's default limit the first time a step asks for it.
        instance.event_log_storage.initialize_concurrency_limit_to_default("gpu")
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 1
    finally:
        instance.dispose()


@pytest.mark.parametrize("path", ["deploy/dagster.postgres.yaml", "deploy/k8s/dagster.yaml", "deploy/ecs/dagster.yaml"])
def test_deployment_instance_configs_validate(path, tmp_path):
    shutil.copy(ROOT / path, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))  # raises DagsterInvalidConfigError on a bad key or type
    assert config["run_monitoring"]["enabled"] and config["run_retries"]["enabled"]
    assert config["concurrency"]["pools"]["default_limit"] == 1
    password = config["storage"]["postgres"]["postgres_db"]["password"]
    assert password == {"env": "DAGSTER_POSTGRES_PASSWORD"}  # never in the file
    env_names = set(re.findall(r"env: ([A-Z_]+)", (ROOT / path).read_text()))
    assert env_names <= THIRD_PARTY_VARIABLES
    launcher = config.get("run_launcher")
    if launcher:  # the class's own schema: a misspelt option fails here, not at the first run
        cls = getattr(importlib.import_module(launcher["module"]), launcher["class"])
        result = validate_config(cls.config_type(), launcher["config"])
        assert result.success, [error.message for error in result.errors]


def test_k8s_executor_run_config_validates():
    from dagster_k8s import k8s_job_executor

    config = _yaml("deploy/k8s/executor.yaml")["execution"]["config"]
    result = validate_config(k8s_job_executor.config_schema.as_field().config_type, config)
    assert result.success, [error.message for error in result.errors]


def test_moxi_executor_picks_one_pod_per_step():
    from moxi_pipeline.defs.executors import run_executor

    assert run_executor("multiprocess") is None  # Dagster's default
    assert run_executor("k8s_job").name == "k8s"
    code = "from moxi_pipeline.definitions import defs; print(defs.executor.name)"
    env = {**os.environ, "MOXI_EXECUTOR": "k8s_job", "PYTHONPATH": str(ROOT)}
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.strip() == "k8s"
    with pytest.raises(ValueError, match="MOXI_EXECUTOR='celery'"):
        load_settings(env={"MOXI_EXECUTOR": "celery"})


def test_the_two_code_locations_split_the_graph_without_overlap():
    from moxi_pipeline.definitions import defs
    from moxi_pipeline.defs.locations import data_defs, model_defs

    def executable(definitions):
        graph = definitions.resolve_asset_graph()
        return {key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).is_executable}

    whole = executable(defs)
    assert executable(data_defs) == {"raw_readmes", "readme_chunks", "sft_dataset"}
    assert executable(data_defs) | executable(model_defs) == whole
    assert executable(data_defs) & executable(model_defs) == set()
    model_graph = model_defs.resolve_asset_graph()
    assert {key.to_user_string() for key in model_graph.get_all_asset_keys()} == whole - {"readme_chunks"}
    assert {s.name for s in model_defs.sensors} == {"retrain_on_new_dataset", "alert_on_run_failure"}


@pytest.mark.parametrize("path", ["workspace.yaml", "deploy/workspace.multi.local.yaml"])
def test_workspace_files_name_loadable_definitions(path):
    for entry in _yaml(path)["load_from"]:
        target = entry["python_module"]
        module = importlib.import_module(target["module_name"])
        assert isinstance(getattr(module, target.get("attribute", "defs")), dg.Definitions)


def test_helm_values_deploy_both_locations_with_settings_the_code_reads():
    values = _yaml("deploy/k8s/values.yaml")
    deployments = values["dagster-user-deployments"]["deployments"]
    multi = {entry["grpc_server"]["location_name"] for entry in _yaml("deploy/workspace.multi.yaml")["load_from"]}
    assert len(deployments) == len(multi) == 2
    for deployment in deployments:
        args = deployment["dagsterApiGrpcArgs"]
        module, attribute = args[args.index("-m") + 1], args[args.index("-a") + 1]
        assert isinstance(getattr(importlib.import_module(module), attribute), dg.Definitions)
        assert {item["name"] for item in deployment["env"]} <= SETTINGS_VARIABLES
        assert {"name": "MOXI_EXECUTOR", "value": "k8s_job"} in deployment["env"]
    assert values["postgresql"]["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False


def test_the_documented_mongodb_replica_set_uri_parses():
    from pymongo import uri_parser

    (uri,) = set(re.findall(r"mongodb://\S+", (ROOT / "deploy/k8s/values.yaml").read_text()))
    parsed = uri_parser.parse_uri(uri)
    assert len(parsed["nodelist"]) == 3
    assert parsed["options"]["replicaSet"] == "rs0" and parsed["options"]["w"] == "majority"


def test_dg_project_config_and_dg_check_defs(tmp_path):
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dg_config = pyproject["tool"]["dg"]
    assert dg_config["directory_type"] == "project"
    assert dg_config["project"]["root_module"] == "moxi_pipeline"
    target = dg_config["project"]["code_location_target_module"]
    assert target == pyproject["tool"]["dagster"]["module_name"] == _yaml("workspace.yaml")["load_from"][0]["python_module"]["module_name"]
    dg_cli = Path(sys.executable).with_name("dg")
    if not dg_cli.exists():
        pytest.skip("dagster-dg-cli is not installed (pip install -e '.[dev]'): the config was checked, not run")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([str(dg_cli), "check", "defs"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr


# --- no development-machine paths in what users read --------------------------------------------------

DEV_PATHS = re.compile(r"shared/corpus|/work/")
SKIP_DIRS = {".git", ".venv", "benchmarks", "data", ".dagster_home", "test-artifacts", "moxi_pipeline_tests", "__pycache__"}


def _product_files():
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        if path.is_file() and not SKIP_DIRS & set(relative.parts) and not any(p.endswith(".egg-info") for p in relative.parts):
            if path.suffix in {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".example", ".cfg"} or path.name in {"Makefile", "Dockerfile"}:
                yield relative


def test_product_files_name_no_development_machine_path():
    offenders = [f"{path}: {match.group(0)}" for path in _product_files()
                 for match in [DEV_PATHS.search((ROOT / path).read_text(errors="replace"))] if match]
    assert offenders == []
