"""train on the real embedded SmolLM2-135M for 3 short steps: only LoRA moves, and the adapter reloads and writes."""

from __future__ import annotations

import pytest

from moxi_pipeline.training.train import load_train_config, train_adapter
from moxi_pipeline_tests.training.test_train import (
    assert_only_lora_changed,
    make_sample,
    snapshot_trained_model,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory):
    """The embedded GGUF de-quantized to safetensors once per session (~30 s)."""
    from moxi_pipeline.models.base import import_base_model

    return import_base_model("embedded", tmp_path_factory.mktemp("smollm2")).path


def test_smollm2_lora_trains_saves_reloads_and_generates(smollm2_dir, tmp_path, monkeypatch):
    import torch

    from moxi_pipeline.models.base import load_model, load_tokenizer
    from moxi_pipeline.readme.prompts import build_messages

    # 3 steps x 1 sample x 128 tokens: ~10 s of training; lr 1e-3 so 3 steps visibly move lora_B.
    config = load_train_config(
        "demo", max_steps=3, max_length=128, min_completion_tokens=64, per_device_train_batch_size=1,
        gradient_accumulation_steps=1, learning_rate=1e-3, warmup_steps=0, logging_steps=1, device="cpu",
    )
    captured = snapshot_trained_model(monkeypatch)
    samples = [make_sample(i) for i in range(3)]
    result = train_adapter(smollm2_dir, samples, samples[:1], config, tmp_path, "hash")

    assert result.steps == 3 and len(result.losses) == 3 and result.eval_loss is not None
    assert_only_lora_changed(captured["model"], captured["before"])

    tokenizer = load_tokenizer(tmp_path)
    model = load_model(smollm2_dir, device="cpu", adapter_dir=tmp_path)
    assert sum("lora_B" in name for name, _ in model.named_parameters()) == 7 * 30  # 7 modules x 30 layers
    sample = samples[0]
    prompt = tokenizer.apply_chat_template(
        build_messages(sample.instruction, sample.input, sample.repo), add_generation_prompt=True, tokenize=False
    )
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    text = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert text.strip()
