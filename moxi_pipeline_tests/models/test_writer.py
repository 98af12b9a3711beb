"""`models.writer`: what `--adapter` names, resolved to an adapter folder and its base model."""

from __future__ import annotations

import json

import pytest

from moxi_pipeline.models.writer import base_model_of, resolve_adapter


def test_resolve_latest_without_a_trained_adapter_says_to_train_first(tmp_path):
    with pytest.raises(ValueError, match=r"no adapter has been trained yet .*LATEST is missing.*train one first"):
        resolve_adapter("latest", tmp_path)


def _adapter(path, **files):
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps(files.pop("adapter_config", {})))
    for name, content in files.items():
        (path / name).write_text(json.dumps(content))
    return path


def test_resolve_latest_reads_the_run_folder_name(tmp_path):
    run = _adapter(tmp_path / "20250101-120000")
    (tmp_path / "LATEST").write_text("20250101-120000\n")
    assert resolve_adapter("latest", tmp_path) == run
    assert resolve_adapter(str(run), tmp_path / "elsewhere") == run


@pytest.mark.parametrize("latest, message", [("", r"LATEST is empty"), ("gone", r"gone is not a PEFT adapter")])
def test_resolve_latest_with_a_bad_latest_file(tmp_path, latest, message):
    (tmp_path / "LATEST").write_text(latest)
    with pytest.raises(ValueError, match=message):
        resolve_adapter("latest", tmp_path)


def test_resolve_a_directory_that_is_not_an_adapter(tmp_path):
    with pytest.raises(ValueError, match=r"adapter '.*plain': .* is not a PEFT adapter directory \(no adapter_config.json\)"):
        resolve_adapter(str(tmp_path / "plain"), tmp_path)


def test_base_model_prefers_training_config_then_adapter_config(tmp_path):
    first, second = (tmp_path / "base1"), (tmp_path / "base2")
    for base in (first, second):
        base.mkdir()
        (base / "config.json").write_text("{}")
    both = _adapter(
        tmp_path / "a", adapter_config={"base_model_name_or_path": str(second)},
        **{"training_config.json": {"base_model_dir": str(first)}},
    )
    peft_only = _adapter(tmp_path / "b", adapter_config={"base_model_name_or_path": str(second)})
    assert (base_model_of(both), base_model_of(peft_only)) == (first, second)


def test_base_model_errors_name_the_file_and_value(tmp_path):
    missing = _adapter(tmp_path / "a", adapter_config={"base_model_name_or_path": "/nowhere/model"})
    with pytest.raises(ValueError, match=r"adapter_config.json: base_model_name_or_path='/nowhere/model' is not a model"):
        base_model_of(missing)
    with pytest.raises(ValueError, match=r"neither training_config.json 'base_model_dir' nor"):
        base_model_of(_adapter(tmp_path / "b"))


def test_resolve_model_names_what_it_is_not(tmp_path):
    from moxi_pipeline.models.writer import resolve_model

    with pytest.raises(ValueError, match=r"model '.*missing.gguf': no GGUF file there"):
        resolve_model(str(tmp_path / "missing.gguf"))
    adapter = _adapter(tmp_path / "adapter")
    with pytest.raises(ValueError, match=r"is a LoRA adapter, not a merged model: pass it as --adapter"):
        resolve_model(str(adapter))
    with pytest.raises(ValueError, match=r"neither a .gguf file nor a model folder \(no config.json"):
        resolve_model(str(tmp_path))


def test_a_merged_folder_and_its_gguf_file_write_alike(tiny_model_dir, tmp_path):
    # --model DIR and --model FILE.gguf go through load_writer: same tokenizer, same next tokens
    import torch

    from moxi_pipeline.export.gguf import export_gguf
    from moxi_pipeline.models.writer import (
        WriterSpec,
        load_writer,
        resolve_model,
        resolve_writer,
    )

    result = export_gguf(tiny_model_dir, tmp_path / "gguf", types=("f16",))
    spec = resolve_writer("latest", tmp_path / "no_adapters", tmp_path / "no_models", tmp_path, model=str(result.files["f16"]))
    assert spec == WriterSpec(tmp_path / "gguf", gguf_file="moxi-f16.gguf")
    assert resolve_model(str(tiny_model_dir)) == WriterSpec(tiny_model_dir)
    folder_model, folder_tokenizer = load_writer(WriterSpec(tiny_model_dir), "cpu")
    gguf_model, gguf_tokenizer = load_writer(spec, "cpu")
    text = "## Usage\n\nRun `tiny --help` to see the options."
    ids = folder_tokenizer(text, return_tensors="pt").input_ids
    assert gguf_tokenizer(text, return_tensors="pt").input_ids.tolist() == ids.tolist()
    with torch.no_grad():
        folder_logits, gguf_logits = folder_model(ids).logits.float(), gguf_model(ids).logits.float()
    assert float((folder_logits - gguf_logits).abs().max()) < 0.05  # f16 file vs the fp32 folder, both run in bf16
