"""Environment (.env and the process environment) -> typed settings. Nothing else reads os.environ."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _load_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip("'\"")
    return values


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    base_model: str
    train_profile: str
    collect_source: str
    collect_path: str | None
    collect_limit: int | None
    train_device: str
    gpu_pool: str | None

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def adapters_dir(self) -> Path:
        """Each training run is `<adapters_dir>/<run_id>/`; the file LATEST names the newest run."""
        return self.models_dir / "lora_adapter"


def load_settings(env: dict[str, str] | None = None) -> Settings:
    merged = {**_load_dotenv(PROJECT_ROOT / ".env"), **(os.environ if env is None else env)}
    data_dir = Path(merged.get("MOXI_DATA_DIR", PROJECT_ROOT / "data")).resolve()
    return Settings(
        data_dir=data_dir,
        base_model=merged.get("MOXI_BASE_MODEL", "embedded"),
        train_profile=merged.get("MOXI_TRAIN_PROFILE", "demo"),
        collect_source=merged.get("MOXI_COLLECT_SOURCE", "installed"),
        collect_path=merged.get("MOXI_COLLECT_PATH") or None,
        collect_limit=_optional_int(merged, "MOXI_COLLECT_LIMIT"),
        train_device=merged.get("MOXI_TRAIN_DEVICE", "auto"),
        gpu_pool=merged.get("MOXI_GPU_POOL") or None,
    )


def _optional_int(values: dict[str, str], name: str) -> int | None:
    raw = values.get(name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
