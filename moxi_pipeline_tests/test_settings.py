"""Settings: `.env` parsed as a shell would, every variable validated at load, errors name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from moxi_pipeline import settings as settings_module
from moxi_pipeline.settings import load_settings


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project root of our own, so the checkout's .env never leaks into a test."""
    monkeypatch.setattr(settings_module, "PROJECT_ROOT", tmp_path)
    return tmp_path


def test_defaults_without_any_variable(project):
    settings = load_settings({})
    assert (settings.data_dir, settings.base_model, settings.train_profile, settings.collect_source) == (
        project / "data", "embedded", "demo", "installed")
    assert (settings.collect_path, settings.collect_limit, settings.train_device, settings.gpu_pool) == (None, None, "auto", None)
    assert settings.adapters_dir == project / "data" / "models" / "lora_adapter"


def test_dotenv_is_read_as_a_shell_would(project, monkeypatch):
    # Each line below was misread by the old hand parser: `export` made the name "export MOXI_...",
    # the comment stayed in the value, and `~` was kept literally.
    monkeypatch.setenv("HOME", str(project / "home"))
    (project / ".env").write_text(
        "# settings\n"
        "export MOXI_COLLECT_LIMIT=5\n"
        "MOXI_TRAIN_PROFILE=cpu  # the fast profile\n"
        "MOXI_COLLECT_SOURCE='local'\n"
        'MOXI_DATA_DIR="~/moxi data"\n'
        "MOXI_COLLECT_PATH=~/code\n"
        "OPENAI_API_KEY=not-ours\n"
    )
    settings = load_settings({})
    assert (settings.collect_limit, settings.train_profile, settings.collect_source) == (5, "cpu", "local")
    assert settings.data_dir == project / "home" / "moxi data"
    assert settings.collect_path == str(project / "home" / "code")


def test_environment_wins_over_dotenv_and_empty_means_unset(project):
    (project / ".env").write_text("MOXI_COLLECT_LIMIT=5\nMOXI_TRAIN_DEVICE=cpu\n")
    settings = load_settings({"MOXI_COLLECT_LIMIT": "9", "MOXI_TRAIN_DEVICE": "", "MOXI_GPU_POOL": ""})
    assert (settings.collect_limit, settings.train_device, settings.gpu_pool) == (9, "cpu", None)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"MOXI_COLLECT_LIMIT": "abc"}, "MOXI_COLLECT_LIMIT='abc': Input should be a valid integer"),
        ({"MOXI_COLLECT_LIMIT": "0"}, "MOXI_COLLECT_LIMIT='0': Input should be greater than or equal to 1"),
        ({"MOXI_TRAIN_DEVICE": "gpu"}, "MOXI_TRAIN_DEVICE='gpu': Input should be 'auto', 'cpu' or 'cuda'"),
        ({"MOXI_COLLECT_SOURCE": "ftp"}, "MOXI_COLLECT_SOURCE='ftp': unknown source 'ftp'; choose from installed, jsonl, local, github"),
        ({"MOXI_TRAIN_PROFILE": "fast"}, "MOXI_TRAIN_PROFILE='fast': choose one of cpu, demo, gpu-3b, gpu-7b"),
        ({"MOXI_GPU_POOL": "two words"}, "MOXI_GPU_POOL='two words': String should match pattern"),
        ({"MOXI_BASE_MODEL": "./missing_model"}, "MOXI_BASE_MODEL='./missing_model': no model folder at"),
        ({"MOXI_COLLECT_LIMT": "3"}, "MOXI_COLLECT_LIMT in the environment: not a Moxi setting"),
    ],
)
def test_bad_value_names_the_variable_and_value(project, env, message):
    with pytest.raises(ValueError) as caught:
        load_settings(env)
    assert message in str(caught.value)


def test_typo_in_dotenv_is_named_with_the_file(project):
    (project / ".env").write_text("MOXI_COLECT_SOURCE=local\n")
    with pytest.raises(ValueError, match=r"MOXI_COLECT_SOURCE in .*\.env: not a Moxi setting"):
        load_settings({})


def test_data_dir_that_is_a_file_is_refused(project):
    (project / "afile").write_text("")
    with pytest.raises(ValueError, match=r"MOXI_DATA_DIR=.*afile.*exists and is not a folder"):
        load_settings({"MOXI_DATA_DIR": str(project / "afile")})


def test_local_base_model_folder_is_expanded(project):
    (project / "model").mkdir()
    assert load_settings({"MOXI_BASE_MODEL": str(project / "model")}).base_model == str(project / "model")
    assert load_settings({"MOXI_BASE_MODEL": "HuggingFaceTB/SmolLM2-135M"}).base_model == "HuggingFaceTB/SmolLM2-135M"


@pytest.mark.parametrize("name", ["embedded", "gemma3-270m"])
def test_embedded_base_model_names_are_accepted_as_given(project, name):
    # a name of models.base.EMBEDDED_GGUF_SOURCES is neither a path to check nor changed
    assert load_settings({"MOXI_BASE_MODEL": f" {name} "}).base_model == name


def test_service_variables_keep_their_own_names_and_hide_secrets(project):
    (project / ".env").write_text("GITHUB_TOKEN=ghp_fromdotenv\nMONGODB_DB_NAME=readmes\n")
    settings = load_settings({
        "MONGODB_URI": "mongodb://user:pw@localhost:27017", "MOXI_S3_BUCKET": "moxi-artifacts",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "OPENAI_BASE_URL": "http://127.0.0.1:8000/v1",
        "OPENAI_API_KEY": "sk-test"})
    assert settings.github_token.get_secret_value() == "ghp_fromdotenv"
    assert settings.mongodb_uri.get_secret_value() == "mongodb://user:pw@localhost:27017"
    assert (settings.mongodb_db_name, settings.s3_bucket, settings.aws_endpoint_url, settings.openai_base_url) == (
        "readmes", "moxi-artifacts", "http://127.0.0.1:9000", "http://127.0.0.1:8000/v1")
    assert "sk-test" not in repr(settings) and "pw@" not in repr(settings)


def test_a_bad_service_value_is_named_without_printing_secrets(project):
    with pytest.raises(ValueError) as caught:
        load_settings({"MONGODB_DB_NAME": "my.db", "MOXI_S3_BUCKET": "Bad_Bucket", "OPENAI_BASE_URL": "ftp://x"})
    message = str(caught.value)
    assert "MONGODB_DB_NAME='my.db'" in message and "MOXI_S3_BUCKET='Bad_Bucket'" in message
    assert "OPENAI_BASE_URL='ftp://x'" in message
