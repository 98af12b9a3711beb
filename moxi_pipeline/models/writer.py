"""The model to write with: resolve what the user named (an adapter, 'latest', s3://, 'none') and load it.

`moxi generate`, `moxi evaluate` and `eval_report` all call `load_writer`; nothing else resolves adapters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

LATEST_FILE = "LATEST"
ADAPTER_CONFIG = "adapter_config.json"
TRAINING_CONFIG = "training_config.json"


def resolve_adapter(adapter: str, adapters_dir: str | Path, cache_dir: str | Path | None = None,
                    endpoint_url: str | None = None) -> Path:
    """'latest' -> the run named in `adapters_dir/LATEST`; 's3://bucket/key' -> that adapter fetched into
    `cache_dir` (default: beside `adapters_dir`); anything else is an adapter directory path."""
    adapters_dir = Path(adapters_dir)
    if adapter.startswith("s3://"):
        from moxi_pipeline.storage.artifacts import S3Artifacts, parse_s3_uri

        cache_dir = Path(cache_dir) if cache_dir else adapters_dir.parent / "cache" / "s3"
        path = S3Artifacts(parse_s3_uri(adapter)[0], cache_dir, endpoint_url=endpoint_url).fetch(adapter)
    elif adapter == "latest":
        latest = adapters_dir / LATEST_FILE
        if not latest.is_file():
            raise ValueError(
                f"adapter='latest' but no adapter has been trained yet ({latest} is missing): "
                "train one first (`make demo`, or materialize the lora_adapter asset), or pass --adapter DIR"
            )
        name = latest.read_text().strip()
        if not name:
            raise ValueError(f"adapter='latest' but {latest} is empty; it should hold a run folder name")
        path = adapters_dir / name
    else:
        path = Path(adapter)
    if not (path / ADAPTER_CONFIG).is_file():
        raise ValueError(f"adapter {adapter!r}: {path} is not a PEFT adapter directory (no {ADAPTER_CONFIG})")
    return path


def base_model_of(adapter_dir: str | Path) -> Path:
    """The base model an adapter was trained on: training_config.json's base_model_dir, else PEFT's record."""
    adapter_dir = Path(adapter_dir)
    sources = ((TRAINING_CONFIG, "base_model_dir"), (ADAPTER_CONFIG, "base_model_name_or_path"))
    for filename, key in sources:
        path = adapter_dir / filename
        value = json.loads(path.read_text()).get(key) if path.is_file() else None
        if not value:
            continue
        # training_config.json stores it relative to the adapter folder; PEFT's record is as given
        model_dir = adapter_dir / value if not Path(value).is_absolute() and (adapter_dir / value).is_dir() else Path(value)
        if not (model_dir / "config.json").is_file():
            raise ValueError(f"{path}: {key}={value!r} is not a model directory (no config.json there)")
        return model_dir
    raise ValueError(
        f"adapter {adapter_dir}: neither {TRAINING_CONFIG} 'base_model_dir' nor {ADAPTER_CONFIG} "
        "'base_model_name_or_path' names the base model"
    )



def base_model_for(adapter_dir: Path | None, models_dir: str | Path, fetched_root: str | Path | None = None) -> Path:
    """The adapter's base model, or `models_dir/base_model` with no adapter; it must exist.

    An adapter fetched from S3 (under `fetched_root`) names its base model relative to where it was
    trained; when that folder is not here, the local base model serves.
    """
    local_base = Path(models_dir) / "base_model"
    try:
        base_dir = base_model_of(adapter_dir) if adapter_dir else local_base
    except ValueError:
        fetched = adapter_dir is not None and fetched_root is not None and Path(adapter_dir).is_relative_to(fetched_root)
        if not (fetched and (local_base / "config.json").is_file()):
            raise
        base_dir = local_base
    if not (Path(base_dir) / "config.json").is_file():
        raise ValueError(f"no base model at {base_dir}: run `make demo` or materialize base_model first")
    return Path(base_dir)


@dataclass(frozen=True)
class WriterSpec:
    """What to write with, resolved to folders: the base model and, optionally, an adapter on top; or a merged
    model folder as `base_dir`; or a GGUF file, `base_dir / gguf_file` (transformers de-quantizes it)."""

    base_dir: Path
    adapter_dir: Path | None = None
    gguf_file: str | None = None

    @property
    def tokenizer_dir(self) -> Path:
        # a Moxi run saves its tokenizer beside the adapter; an adapter from elsewhere may not
        if self.adapter_dir is not None and (self.adapter_dir / "tokenizer_config.json").is_file():
            return self.adapter_dir
        return self.base_dir


def resolve_writer(adapter: str, adapters_dir: str | Path, models_dir: str | Path, cache_dir: str | Path,
                   endpoint_url: str | None = None, model: str | None = None) -> WriterSpec:
    """`adapter` ('latest', a folder, s3://bucket/key fetched into `cache_dir`, or 'none' for the base model)
    as folders: the adapter and the base model it sits on; or `model` (a merged folder, a .gguf file) instead."""
    if model is not None:
        return resolve_model(model)
    adapter_dir = None if adapter == "none" else resolve_adapter(adapter, adapters_dir, cache_dir, endpoint_url)
    return WriterSpec(base_model_for(adapter_dir, models_dir, fetched_root=cache_dir), adapter_dir)


def resolve_model(model: str) -> WriterSpec:
    """`--model`: a merged model folder (config.json + weights) or a .gguf file, written with as it is."""
    path = Path(model)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ValueError(f"model {model!r}: no GGUF file there")
        return WriterSpec(path.parent, gguf_file=path.name)
    if (path / ADAPTER_CONFIG).is_file():
        raise ValueError(f"model {model!r} is a LoRA adapter, not a merged model: pass it as --adapter")
    if not (path / "config.json").is_file():
        raise ValueError(f"model {model!r}: neither a .gguf file nor a model folder (no config.json in {path})")
    return WriterSpec(path)


def load_writer(spec: WriterSpec, device: str = "auto"):
    """(model, tokenizer) ready to write with: the base model, the adapter's LoRA merged in for speed."""
    from moxi_pipeline.models.base import load_model

    if spec.gguf_file is not None:
        return _load_gguf(spec, device), load_writer_tokenizer(spec)
    model = load_model(spec.base_dir, device, spec.adapter_dir, merge=spec.adapter_dir is not None)
    return model, load_writer_tokenizer(spec)


def load_writer_tokenizer(spec: WriterSpec):
    """The tokenizer that goes with `spec`: beside the adapter, in the model folder, or inside the GGUF file."""
    from moxi_pipeline.models.base import load_tokenizer

    if spec.gguf_file is None:
        return load_tokenizer(spec.tokenizer_dir)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(spec.base_dir), gguf_file=spec.gguf_file)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _load_gguf(spec: WriterSpec, device: str):
    import torch
    from transformers import AutoModelForCausalLM

    from moxi_pipeline.models.base import compute_dtype, resolve_device

    # as load_model: the de-quantized weights run at the merged model's speed, not llama.cpp's
    device = resolve_device(device)
    model = AutoModelForCausalLM.from_pretrained(str(spec.base_dir), gguf_file=spec.gguf_file, dtype=compute_dtype(device))
    return model.to(device).eval()
