"""A merged Llama-architecture model (SmolLM2) as GGUF files for llama.cpp, Ollama and LM Studio.

Written with the `gguf` package's writer and numpy quantizers (no compiler needed), following llama.cpp's
convert_hf_to_gguf.py for LlamaForCausalLM: llama.cpp's tensor names, the Q/K row permutation, 1-D norm
weights kept in f32, the gpt2 BPE tokenizer and the chat template in the metadata.

Every file is checked: transformers loads it back (`gguf_file=`, de-quantized) and its top-1 next token on
`CHECK_TEXT` must agree with the merged model's at `MIN_TOP1_AGREE` of the positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from moxi_pipeline.export.merge import CHECK_TEXT
from moxi_pipeline.storage.folders import publish_dir, staging_dir

# type -> (tensor type name in gguf.GGMLQuantizationType, llama.cpp's file type name in gguf.LlamaFileType)
GGUF_TYPES = {
    "f16": ("F16", "MOSTLY_F16"),
    "bf16": ("BF16", "MOSTLY_BF16"),
    "q8_0": ("Q8_0", "MOSTLY_Q8_0"),
    "q4_0": ("Q4_0", "MOSTLY_Q4_0"),
}
MIN_TOP1_AGREE = {"f16": 0.99, "bf16": 0.99, "q8_0": 0.95}  # q4_0 is measured, not gated
# llama.cpp picks its pre-tokenizer regex by this name; SmolLM2's byte-level BPE is "smollm"
TOKENIZER_PRE = "smollm"


class ExportCheckError(RuntimeError):
    """An exported file does not reproduce the model it came from."""


@dataclass(frozen=True)
class GgufResult:
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)  # type -> file
    size_bytes: dict[str, int] = field(default_factory=dict)
    top1_agree: dict[str, float] = field(default_factory=dict)


def export_gguf(merged_dir: str | Path, out_dir: str | Path, types=("f16", "q8_0"), name: str = "moxi") -> GgufResult:
    """`merged_dir` written as `out_dir/<name>-<type>.gguf` for each type, each checked against the merged model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged_dir, out_dir, types = Path(merged_dir), Path(out_dir), list(types)
    unknown = [kind for kind in types if kind not in GGUF_TYPES]
    if unknown or not types:
        raise ValueError(f"gguf type {unknown or types!r} is not one of {sorted(GGUF_TYPES)}")
    model = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.float32).eval()
    if model.config.model_type != "llama":
        raise ValueError(f"{merged_dir}: GGUF export supports the llama architecture, not {model.config.model_type!r}")
    tensors = gguf_tensors(model)
    for kind in types:
        check_row_widths(tensors, kind)
    tokenizer = AutoTokenizer.from_pretrained(str(merged_dir))
    staging = staging_dir(out_dir)
    files = {}
    for kind in types:
        files[kind] = staging / f"{name}-{kind}.gguf"
        write_gguf(files[kind], model.config, tensors, tokenizer, merged_dir, kind)
    ids = tokenizer(CHECK_TEXT, return_tensors="pt").input_ids
    with torch.no_grad():
        reference = model(ids).logits.argmax(-1)
    agree = {kind: top1_agreement(path, ids, reference) for kind, path in files.items()}
    for kind, share in agree.items():
        if share < MIN_TOP1_AGREE.get(kind, 0.0):
            raise ExportCheckError(f"gguf {kind}: top-1 agreement with {merged_dir} is {share:.3f}, "
                                   f"below {MIN_TOP1_AGREE[kind]} (not published)")
    publish_dir(staging, out_dir)
    files = {kind: out_dir / path.name for kind, path in files.items()}
    return GgufResult(out_dir, files, {kind: path.stat().st_size for kind, path in files.items()}, agree)


def permute(weights, n_head: int, n_head_kv: int | None):
    """HF's rotary layout (halves) -> llama.cpp's (interleaved pairs): convert_hf_to_gguf LlamaModel.permute."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def gguf_tensors(model) -> dict[str, tuple[str, object]]:
    """llama.cpp tensor name -> (HF name, fp32 numpy array), Q and K permuted; a tied lm_head is not written."""
    import gguf

    config = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    out = {}
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ValueError(f"tensor {hf_name!r} has no llama.cpp name: GGUF export does not know this model")
        data = tensor.detach().float().numpy()
        if hf_name.endswith("q_proj.weight"):
            data = permute(data, config.num_attention_heads, config.num_attention_heads)
        elif hf_name.endswith("k_proj.weight"):
            data = permute(data, config.num_attention_heads, config.num_key_value_heads)
        out[gguf_name] = (hf_name, data)
    return out


def check_row_widths(tensors: dict, kind: str) -> None:
    """A block-quantized type needs every 2-D tensor's row width to be a multiple of its block size."""
    import gguf

    qtype = gguf.GGMLQuantizationType[GGUF_TYPES[kind][0]]
    block_size = gguf.GGML_QUANT_SIZES[qtype][0]
    for gguf_name, (hf_name, data) in tensors.items():
        if data.ndim == 2 and data.shape[-1] % block_size:
            raise ValueError(f"gguf type {kind!r} does not fit tensor {hf_name} ({gguf_name}): row width "
                             f"{data.shape[-1]} is not a multiple of its block size {block_size}")


def write_gguf(path: Path, config, tensors: dict, tokenizer, merged_dir: Path, kind: str) -> None:
    import gguf
    import numpy as np

    qtype = gguf.GGMLQuantizationType[GGUF_TYPES[kind][0]]
    writer = gguf.GGUFWriter(str(path), "llama")
    write_hparams(writer, config, merged_dir.name, gguf.LlamaFileType[GGUF_TYPES[kind][1]])
    write_tokenizer(writer, tokenizer, config.vocab_size, merged_dir)
    for gguf_name, (_, data) in tensors.items():
        if data.ndim == 1:  # norms stay f32, as llama.cpp keeps them
            writer.add_tensor(gguf_name, data.astype(np.float32))
        elif qtype == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(gguf_name, data.astype(np.float16))
        else:
            writer.add_tensor(gguf_name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_hparams(writer, config, name: str, file_type) -> None:
    import gguf

    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    writer.add_name(name)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(head_dim)
    rope_theta = (getattr(config, "rope_parameters", None) or {}).get("rope_theta") or getattr(config, "rope_theta", 10000.0)
    writer.add_rope_freq_base(float(rope_theta))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def write_tokenizer(writer, tokenizer, vocab_size: int, merged_dir: Path) -> None:
    """gpt2 BPE as llama.cpp reads it: tokens by id, their types, merges, special ids, chat template."""
    import gguf

    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    added = tokenizer.get_added_vocab()
    special = set(tokenizer.all_special_tokens)
    tokens, token_types = [], []
    for index in range(vocab_size):
        token = by_id.get(index)
        if token is None:  # the embedding has rows the tokenizer never produces
            tokens.append(f"[PAD{index}]")
            token_types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(token)
            kind = gguf.TokenType.CONTROL if token in special else gguf.TokenType.USER_DEFINED
            token_types.append(kind if token in added else gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(TOKENIZER_PRE)
    writer.add_token_list(tokens)
    writer.add_token_types(token_types)
    vocab = gguf.SpecialVocab(merged_dir, load_merges=True, n_vocab=vocab_size)
    if not vocab.merges:
        raise ValueError(f"{merged_dir}: tokenizer.json has no BPE merges; GGUF export needs a gpt2-style BPE tokenizer")
    vocab.chat_template = tokenizer.chat_template or vocab.chat_template
    vocab.add_to_gguf(writer, quiet=True)


def top1_agreement(path: Path, ids, reference) -> float:
    """Share of positions where the GGUF file (loaded by transformers, de-quantized) picks the reference's token."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    with torch.no_grad():
        predicted = model(ids).logits.argmax(-1)
    return float((predicted == reference).float().mean())
