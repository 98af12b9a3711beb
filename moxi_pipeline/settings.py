"""Environment (.env and the process environment) -> typed settings. Nothing else reads os.environ.

    MOXI_DATA_DIR=./data            where records, models, the dataset and reports land (~ expanded)
    MOXI_BASE_MODEL=embedded        embedded | a Hugging Face id | a local model folder (must exist)
    MOXI_TRAIN_PROFILE=demo         moxi_pipeline/configs/train_<profile>.yaml
    MOXI_TRAIN_DEVICE=auto          auto | cpu | cuda
    MOXI_GPU_POOL=                  a Dagster concurrency pool for training (letters, digits, _ . -)
    MOXI_COLLECT_SOURCE=installed   installed | jsonl | local
    MOXI_COLLECT_PATH=              the jsonl file or the local folder (~ expanded)
    MOXI_COLLECT_LIMIT=             a positive number of repositories, or empty for all

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
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
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
        return self.environ.get(ENV_PREFIX + field_name.upper()), field_name, False

    def __call__(self) -> dict:
        values = {name: self.get_field_value(None, name)[0] for name in self.settings_cls.model_fields}
        return {name: value for name, value in values.items() if value not in (None, "")}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore", frozen=True
    )

    data_dir: Path = Field(default_factory=lambda: PROJECT_ROOT / "data", validate_default=True)
    base_model: str = Field(default="embedded", min_length=1)
    train_profile: str = "demo"
    collect_source: Literal["installed", "jsonl", "local"] = "installed"
    collect_path: str | None = None
    collect_limit: int | None = Field(default=None, ge=1)
    train_device: Literal["auto", "cpu", "cuda"] = "auto"
    gpu_pool: str | None = Field(default=None, pattern=r"^[\w.-]+$")

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
            raise ValueError(f"choose one of {', '.join(profiles)} (moxi_pipeline/configs/train_<profile>.yaml)")
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
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    unknown = sorted(name for name in values if name.upper().startswith(ENV_PREFIX) and name.upper() not in known)
    if unknown:
        raise ValueError(f"{', '.join(unknown)} in {where}: not a Moxi setting; the settings are {', '.join(sorted(known))}")


def describe_settings_error(error: ValidationError) -> str:
    """`MOXI_COLLECT_LIMIT='abc': Input should be a valid integer ...`, one clause per bad variable."""
    parts = []
    for detail in error.errors():
        field = str(detail["loc"][0]) if detail["loc"] else "settings"
        message = re.sub(r"^Value error, ", "", detail["msg"])
        parts.append(f"{ENV_PREFIX}{field.upper()}={detail['input']!r}: {message}")
    return "invalid settings (environment or .env): " + "; ".join(parts)
