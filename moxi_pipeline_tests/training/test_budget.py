"""max_train_minutes: past the budget, training stops at the next step boundary, saves, and says so."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from moxi_pipeline.training.budget import budget_callback
from moxi_pipeline.training.train import load_train_config, train_adapter
from moxi_pipeline_tests.training.test_train import make_sample


def step_end(callback, global_step: int, max_steps: int = 10, save_strategy: str = "steps"):
    from transformers import TrainerControl

    control = TrainerControl()
    callback.on_step_end(SimpleNamespace(save_strategy=save_strategy),
                         SimpleNamespace(global_step=global_step, max_steps=max_steps), control)
    return control


def test_within_the_budget_training_goes_on():
    callback = budget_callback(max_train_minutes=60)
    control = step_end(callback, 1)
    assert not control.should_training_stop and not control.should_save and not callback.stopped_by_budget


def test_past_the_budget_training_stops_and_saves_a_checkpoint_when_checkpoints_are_on():
    callback = budget_callback(max_train_minutes=1e-9)
    control = step_end(callback, 1)
    assert control.should_training_stop and control.should_save and callback.stopped_by_budget
    # without checkpoints (save_steps 0) there is nothing to resume into: the adapter is saved at the end anyway
    assert not step_end(budget_callback(max_train_minutes=1e-9), 1, save_strategy="no").should_save


def test_the_last_planned_step_is_a_normal_finish_even_past_the_budget():
    callback = budget_callback(max_train_minutes=1e-9)
    step_end(callback, 10, max_steps=10)
    assert not callback.stopped_by_budget


def test_the_budget_must_be_positive():
    with pytest.raises(ValueError, match="max_train_minutes=0"):
        load_train_config("demo", max_train_minutes=0)


def test_the_demo_and_cpu_profiles_carry_a_budget():
    assert load_train_config("demo").max_train_minutes == 5
    assert load_train_config("cpu").max_train_minutes == 60


def test_a_spent_budget_stops_after_the_first_step_saves_and_reports_it(tiny_model_dir, tmp_path):
    config = load_train_config(
        "demo", max_steps=5, device="cpu", dtype="float32", warmup_steps=0, logging_steps=1, save_steps=2,
        per_device_train_batch_size=2, gradient_accumulation_steps=1, max_length=128, min_completion_tokens=32,
        max_train_minutes=1e-6,  # spent before the first step ends
    )
    samples = [make_sample(i) for i in range(4)]
    result = train_adapter(tiny_model_dir, samples, samples[:2], config, tmp_path / "out", "abc123")
    assert (result.steps, result.steps_planned, result.stopped_by_budget) == (1, 5, True)
    assert result.eval_loss is not None  # evaluation still runs on what was trained
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    saved = json.loads((tmp_path / "out" / "training_config.json").read_text())["result"]
    assert (saved["steps"], saved["steps_planned"], saved["stopped_by_budget"]) == (1, 5, True)
