"""merge_adapter and export_gguf on the tiny Llama with a random (non-zero) LoRA adapter."""

import json

import numpy as np
import pytest
import yaml

from moxi_pipeline.export.gguf import ExportCheckError, export_gguf, permute
from moxi_pipeline.export.merge import CHECK_TEXT, merge_adapter


def save_random_adapter(base_dir, out_dir, seed=0):
    """A LoRA adapter with random A and B (PEFT's default B=0 would make the merge a no-op)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj"],
                        init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out_dir)
    return out_dir


def tiny_llama(out_dir, hidden_size):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(out_dir)
    return out_dir


def logits(model_dir, text, adapter_dir=None):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    ids = AutoTokenizer.from_pretrained(str(model_dir))(text, return_tensors="pt").input_ids
    with torch.no_grad():
        return model.eval()(ids).logits


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    return save_random_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter"))


@pytest.fixture(scope="module")
def merged(tiny_model_dir, adapter_dir, tmp_path_factory):
    return merge_adapter(tiny_model_dir, adapter_dir, tmp_path_factory.mktemp("export") / "merged")


def test_merged_logits_equal_base_plus_adapter(merged, tiny_model_dir, adapter_dir):
    text = "## Usage\n\nRun `tiny --help` to see the options.\n"
    with_adapter = logits(tiny_model_dir, text, adapter_dir)
    assert merged.max_abs_logit_diff < 1e-4
    assert float((logits(merged.out_dir, text) - with_adapter).abs().max()) < 1e-4
    # the adapter really moves the model, so the equality above says something
    assert float((logits(tiny_model_dir, text) - with_adapter).abs().max()) > 1e-3


def test_merged_folder_is_plain_transformers_with_a_model_card(merged):
    names = {path.name for path in merged.out_dir.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md"} <= names
    assert "adapter_config.json" not in names  # no PEFT needed to load it
    assert merged.size_bytes == (merged.out_dir / "model.safetensors").stat().st_size
    front = yaml.safe_load(merged.out_dir.joinpath("README.md").read_text().split("---")[1])
    assert front["library_name"] == "transformers"
    assert front["license"] == "other"  # a base model folder of unknown origin: its licence is its own
    assert {"base_model", "datasets", "tags"} <= set(front)
    # readable by others: a model to take away (safetensors writes 0600)
    assert all(path.stat().st_mode & 0o777 == 0o644 for path in merged.out_dir.iterdir())


def test_merge_names_a_missing_base_model(adapter_dir, tmp_path):
    import shutil

    adapter = tmp_path / "adapter"
    shutil.copytree(adapter_dir, adapter)
    (adapter / "training_config.json").write_text(json.dumps({"base_model_dir": str(tmp_path / "gone")}))
    with pytest.raises(ValueError, match="gone"):
        merge_adapter(None, adapter, tmp_path / "merged")
    with pytest.raises(ValueError, match="base model .*gone.* is missing"):
        merge_adapter(tmp_path / "gone", adapter, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_merge_names_an_adapter_trained_on_another_base(tmp_path, tiny_model_dir):
    other = tiny_llama(tmp_path / "other_base", hidden_size=64)
    adapter = save_random_adapter(other, tmp_path / "adapter")
    with pytest.raises(ValueError, match=f"adapter {adapter} was trained on another base model than {tiny_model_dir}"):
        merge_adapter(tiny_model_dir, adapter, tmp_path / "merged")


def test_permute_is_what_transformers_undoes():
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    weights = np.arange(16 * 3, dtype=np.float32).reshape(16, 3)  # 4 heads of head_dim 4
    permuted = permute(weights, 4, 4)
    assert not np.array_equal(permuted, weights)
    assert np.array_equal(LlamaTensorProcessor()._reverse_permute_weights(permuted, 4, 4), weights)
    kv = permute(weights, 8, 2)  # GQA: K is permuted by the kv head count
    assert np.array_equal(LlamaTensorProcessor()._reverse_permute_weights(kv, 8, 2), weights)


def test_gguf_round_trip_agrees_with_the_merged_model(merged, tmp_path):
    import gguf
    from transformers import AutoTokenizer

    result = export_gguf(merged.out_dir, tmp_path / "gguf", types=("f16", "q8_0", "q4_0"))
    assert result.top1_agree["f16"] >= 0.99 and result.top1_agree["q8_0"] >= 0.95
    assert 0.0 <= result.top1_agree["q4_0"] <= 1.0
    assert result.size_bytes["q4_0"] < result.size_bytes["q8_0"] < result.size_bytes["f16"]
    reader = gguf.GGUFReader(result.files["q8_0"])
    types = {tensor.name: tensor.tensor_type.name for tensor in reader.tensors}
    assert types["blk.0.attn_q.weight"] == "Q8_0" and types["token_embd.weight"] == "Q8_0"
    assert types["blk.0.attn_norm.weight"] == "F32"  # norms stay f32
    assert "output.weight" not in types  # tied to token_embd
    assert reader.fields["tokenizer.ggml.model"].contents() == "gpt2"
    assert reader.fields["tokenizer.chat_template"].contents().startswith("{% for message in messages %}")
    # the tokenizer inside the file tokenizes as the merged model's does
    ours = AutoTokenizer.from_pretrained(str(merged.out_dir))
    theirs = AutoTokenizer.from_pretrained(str(result.out_dir), gguf_file=result.files["f16"].name)
    assert theirs(CHECK_TEXT).input_ids == ours(CHECK_TEXT).input_ids
    assert (theirs.bos_token, theirs.eos_token) == (ours.bos_token, ours.eos_token)


def test_gguf_fails_when_the_file_does_not_reproduce_the_model(merged, tmp_path, monkeypatch):
    import moxi_pipeline.export.gguf as export

    monkeypatch.setattr(export, "permute", lambda weights, n_head, n_head_kv: weights)  # forget llama.cpp's Q/K layout
    with pytest.raises(ExportCheckError, match="gguf f16: top-1 agreement"):
        export_gguf(merged.out_dir, tmp_path / "gguf", types=("f16",))
    assert not (tmp_path / "gguf").exists()


@pytest.mark.parametrize("types", [("f17",), ("q8_0", "Q4_K"), ()])
def test_gguf_unknown_type_is_named(merged, tmp_path, types):
    with pytest.raises(ValueError, match="gguf type"):
        export_gguf(merged.out_dir, tmp_path / "gguf", types=types)


def test_gguf_type_that_does_not_fit_the_row_width_names_the_tensor(tmp_path):
    model_dir = tiny_llama(tmp_path / "wide48", hidden_size=48)  # 48 is not a multiple of q8_0's 32-wide blocks
    with pytest.raises(ValueError, match=r"gguf type 'q8_0' does not fit tensor model\.embed_tokens\.weight "
                                         r"\(token_embd\.weight\): row width 48 is not a multiple of its block size 32"):
        export_gguf(model_dir, tmp_path / "gguf", types=("f16", "q8_0"))


@pytest.mark.parametrize("source, base_model, license", [
    ("embedded", "HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0"),
    ("gemma3-270m", "google/gemma-3-270m", "gemma"),
    ("org/some-model", "org/some-model", "other"),
])
def test_the_model_card_names_the_base_model_and_its_licence(tmp_path, source, base_model, license):
    from moxi_pipeline.export.merge import model_card

    base, adapter = tmp_path / "base", tmp_path / "adapter"
    base.mkdir()
    adapter.mkdir()
    (base / "moxi_source.json").write_text(json.dumps({"source": source}))
    front = yaml.safe_load(model_card(base, adapter).split("---")[1])
    assert (front["base_model"], front["license"]) == (base_model, license)
