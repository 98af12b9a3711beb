"""Checkpoints and resume on the tiny model: a run killed at step 5 continues from checkpoint-4 and ends where
an uninterrupted run ends; plus the backend import order, packing options and the target-module check."""

from __future__ import annotations

import subprocess
import sys

import pytest

from moxi_pipeline.training.train import (
    checkpoint_dir_for,
    load_train_config,
    train_adapter,
)
from moxi_pipeline_tests.training.test_train import make_sample


class Killed(Exception):
    """Stands in for the process dying: raised from inside the training loop."""


def tiny_config(**overrides):
    values = dict(
        max_steps=6, save_steps=2, save_total_limit=2, device="cpu", dtype="float32", learning_rate=1e-2, warmup_steps=0,
        logging_steps=1, per_device_train_batch_size=2, gradient_accumulation_steps=1, max_length=128,
        min_completion_tokens=32,
    )
    return load_train_config("demo", **{**values, **overrides})


def kill_at(step: int):
    def progress(logs: dict) -> None:
        if logs["step"] == step:
            raise Killed(f"killed at step {step}")

    return progress


def lora_weights(adapter_dir):
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / "adapter_model.safetensors"))


SAMPLES = [make_sample(i) for i in range(8)]


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    return train_adapter(tiny_model_dir, SAMPLES, SAMPLES[:2], tiny_config(), out, "h"), out


@pytest.fixture(scope="module")
def resumed(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("resumed") / "run"
    with pytest.raises(Killed):
        train_adapter(tiny_model_dir, SAMPLES, SAMPLES[:2], tiny_config(), out, "h", progress=kill_at(5))
    left_behind = sorted(p.name for p in checkpoint_dir_for(out).glob("checkpoint-*"))
    logs: list[dict] = []
    result = train_adapter(tiny_model_dir, SAMPLES, SAMPLES[:2], tiny_config(), out, "h", progress=logs.append)
    return result, out, left_behind, logs


def test_a_kill_leaves_the_checkpoints_and_no_adapter(resumed):
    _, _, left_behind, _ = resumed
    assert left_behind == ["checkpoint-2", "checkpoint-4"]  # every 2 steps; step 5 was never saved


def test_resume_continues_at_the_step_after_the_checkpoint(resumed):
    result, _, _, logs = resumed
    assert result.resumed_from_step == 4
    assert [log["step"] for log in logs if "loss" in log] == [5, 6]  # steps 1-4 are not trained again
    assert result.steps == 6
    assert [step for step, _ in result.losses] == [1, 2, 3, 4, 5, 6]  # the loss curve keeps its first part


def test_resumed_run_ends_where_an_uninterrupted_run_ends(resumed, uninterrupted):
    import torch

    _, resumed_dir, _, _ = resumed
    straight_result, straight_dir = uninterrupted
    assert straight_result.resumed_from_step == 0
    expected, got = lora_weights(straight_dir), lora_weights(resumed_dir)
    assert expected.keys() == got.keys()
    # same seed, data order, optimizer and RNG state: the same weights up to float reordering
    assert all(torch.allclose(expected[name], got[name], atol=1e-6) for name in expected)


def test_finished_run_removes_its_checkpoints(resumed):
    _, out, _, _ = resumed
    assert not checkpoint_dir_for(out).exists()
    assert (out / "adapter_model.safetensors").is_file() and not list(out.glob("*.pt"))


def test_checkpoints_of_another_config_are_not_resumed(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(Killed):
        train_adapter(tiny_model_dir, SAMPLES, [], tiny_config(max_steps=4), out, "h", progress=kill_at(3))
    logs: list[dict] = []
    result = train_adapter(tiny_model_dir, SAMPLES, [], tiny_config(max_steps=4, learning_rate=5e-3), out, "h",
                           progress=logs.append)
    assert result.resumed_from_step == 0
    assert [log["step"] for log in logs if "loss" in log] == [1, 2, 3, 4]


def test_early_stopping_evaluates_during_training(tiny_model_dir, tmp_path):
    config = tiny_config(eval_steps=2, save_steps=2, early_stopping_patience=1, learning_rate=1e-2)
    result = train_adapter(tiny_model_dir, SAMPLES, SAMPLES[:2], config, tmp_path / "run", "h")
    assert [step for step, _ in result.eval_losses][:1] == [2]  # the first eval at step 2
    assert result.steps <= 6 and result.eval_loss is not None


def test_epochs_instead_of_max_steps(tiny_model_dir, tmp_path):
    # 8 samples / batch 2 = 4 steps an epoch
    config = tiny_config(max_steps=None, num_train_epochs=1, save_steps=0)
    assert train_adapter(tiny_model_dir, SAMPLES, [], config, tmp_path / "run", "h").steps == 4


def test_a_target_module_the_model_lacks_is_named(tiny_model_dir, tmp_path):
    config = tiny_config(target_modules=["q_proj", "qkv_proj"])
    with pytest.raises(ValueError, match=r"target_modules: \['qkv_proj'\] are not linear layers of this model"):
        train_adapter(tiny_model_dir, SAMPLES, [], config, tmp_path / "run", "h")


def test_padding_free_batch_keeps_samples_apart_and_masks_prompts(tiny_model_dir, tmp_path):
    from trl import SFTTrainer

    from moxi_pipeline.models.base import load_tokenizer
    from moxi_pipeline.training.train import build_dataset, lora_config, sft_config

    config = tiny_config(padding_free=True)
    tokenizer = load_tokenizer(tiny_model_dir)
    dataset = build_dataset(tokenizer, SAMPLES[:2], config)
    trainer = SFTTrainer(model=str(tiny_model_dir), args=sft_config(config, tmp_path, "cpu", has_eval=False),
                         train_dataset=dataset, processing_class=tokenizer, peft_config=lora_config(config))
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    lengths = [len(row["input_ids"]) for row in dataset]
    assert batch["input_ids"].shape == (1, sum(lengths))  # one row, no padding
    assert batch["position_ids"][0].tolist() == list(range(lengths[0])) + list(range(lengths[1]))
    masks = dataset[0]["completion_mask"] + dataset[1]["completion_mask"]
    labels = batch["labels"][0].tolist()
    # the first token of each sample predicts nothing across the boundary; prompts are -100
    assert all(label == -100 for label, keep in zip(labels, masks) if not keep)
    assert sum(label != -100 for label in labels) >= sum(masks) - 2


def test_completion_logits_only_gives_trls_loss_and_trains(tiny_model_dir, tmp_path):
    """The lm_head on completion positions only: the same loss as TRL's full-logits loss, then a real run."""
    import torch
    from trl import SFTTrainer

    from moxi_pipeline.models.base import load_tokenizer
    from moxi_pipeline.training.backends import completion_logits_trainer
    from moxi_pipeline.training.train import build_dataset, lora_config, sft_config

    tokenizer = load_tokenizer(tiny_model_dir)
    long_answer = make_sample(9, "# tiny\n\n" + "Run `tiny --help` to see the options. " * 3)  # rows of unequal length
    for padding_free in (True, False):  # one packed row, or two rows padded to the longest
        config = tiny_config(padding_free=padding_free, completion_logits_only=True)
        dataset = build_dataset(tokenizer, [SAMPLES[0], long_answer], config)
        losses = []
        for trainer_class in (SFTTrainer, completion_logits_trainer(SFTTrainer)):
            trainer = trainer_class(model=str(tiny_model_dir), args=sft_config(config, tmp_path, "cpu", has_eval=False),
                                    train_dataset=dataset, processing_class=tokenizer, peft_config=lora_config(config))
            batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
            with torch.no_grad():
                losses.append(trainer.compute_loss(trainer.model, dict(batch)).item())
        assert losses[0] == pytest.approx(losses[1], rel=1e-5), padding_free
    result = train_adapter(tiny_model_dir, SAMPLES, SAMPLES[:2], tiny_config(
        padding_free=True, completion_logits_only=True, max_steps=2, save_steps=0), tmp_path / "run", "h")
    assert result.steps == 2 and result.eval_loss is not None and result.losses[0][1] > 0


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"max_steps": None}, "set max_steps or num_train_epochs"),
        ({"early_stopping_patience": 2}, "early_stopping_patience=2 needs eval_steps"),
        ({"early_stopping_patience": 2, "eval_steps": 3, "save_steps": 4}, "save_steps to be a multiple of eval_steps=3"),
        ({"learning_rate": -1e-4}, "learning_rate=-0.0001"),
        ({"backend": "tensorrt"}, "backend='tensorrt'"),
    ],
)
def test_inconsistent_options_are_named(overrides, expected):
    with pytest.raises(ValueError, match="train profile 'demo'") as error:
        load_train_config("demo", **overrides)
    assert expected in str(error.value)


def fake_packages(root):
    """Stand-ins for unsloth and trl: each records, when imported, which ML libraries were imported before it."""
    record = "import sys\nSEEN = [m for m in ('unsloth', 'trl', 'transformers', 'peft') if m in sys.modules and m != __name__]\n"
    for name in ("unsloth", "trl"):
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text(record + "SFTTrainer = object\n")
    return root


def test_unsloth_is_imported_before_trl_transformers_and_peft(tmp_path):
    # a fresh interpreter, as a Dagster run or `accelerate launch` starts one
    code = (
        "import sys; from moxi_pipeline.training.backends import import_backend; import_backend('unsloth'); "
        "print(sys.modules['unsloth'].SEEN, sys.modules['trl'].SEEN)"
    )
    env_path = ":".join([str(fake_packages(tmp_path)), *sys.path])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[] ['unsloth']"


def test_hf_backend_never_imports_unsloth(tmp_path, monkeypatch):
    from moxi_pipeline.training.backends import import_backend

    monkeypatch.syspath_prepend(str(fake_packages(tmp_path)))
    monkeypatch.delitem(sys.modules, "unsloth", raising=False)
    import_backend("hf")
    assert "unsloth" not in sys.modules


def test_padding_free_row_gives_each_sample_the_logits_it_gets_alone(tiny_model_dir):
    """No attention across the samples sharing a padding-free row: position_ids restart, and the mask follows.

    transformers builds that block mask only without a KV cache; TRL's compute_loss passes use_cache=False, as
    here (with the cache on, the second sample's logits do change: it sees the first).
    """
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), attn_implementation="sdpa").eval()
    first, second = torch.arange(3, 15), torch.arange(20, 29)
    row = torch.cat([first, second])[None]
    positions = torch.cat([torch.arange(len(first)), torch.arange(len(second))])[None]
    with torch.no_grad():
        packed = model(input_ids=row, position_ids=positions, use_cache=False).logits[0]
        alone = [model(input_ids=ids[None]).logits[0] for ids in (first, second)]
    assert torch.allclose(packed, torch.cat(alone), atol=1e-5)


def test_launch_command_trains_from_the_dataset_records(tiny_model_dir, tmp_path, capsys):
    """`python -m moxi_pipeline.training.train` (what accelerate launch / torchrun run on every GPU), on the tiny model."""
    import json

    from moxi_pipeline.training.train import main

    dataset = tmp_path / "sft_dataset.jsonl"
    rows = [sample.model_copy(update={"split": "test" if i == 0 else "train"}).to_dict() for i, sample in enumerate(SAMPLES[:5])]
    dataset.write_text("\n".join(json.dumps(row) for row in rows))
    out = tmp_path / "adapter"
    code = main(["--profile", "demo", "--base-model", str(tiny_model_dir), "--dataset", str(dataset), "--out", str(out),
                 "--set", "max_steps=2", "--set", "device=cpu", "--set", "max_length=128", "--set", "min_completion_tokens=32",
                 "--set", "gradient_accumulation_steps=1"])
    assert code == 0 and (out / "adapter_model.safetensors").is_file()
    saved = json.loads((out / "training_config.json").read_text())
    assert (saved["config"]["max_steps"], saved["train_samples"], saved["eval_samples"]) == (2, 4, 1)
    assert f"wrote {out}: 2 steps" in capsys.readouterr().out
