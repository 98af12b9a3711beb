"""train: config validation, GPU-path errors on CPU, completion-only masking, and a real 4-step LoRA run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from moxi_pipeline.records import KeyFile, SampleInput, SftSample
from moxi_pipeline.training.tokenize import fit_to_length, tokenize_sample
from moxi_pipeline.training.train import (
    available_profiles,
    check_runtime,
    load_train_config,
    train_adapter,
)


def make_sample(index: int, content: str = "# tiny\n\nParses files.\n\n## Usage\n\nRun `tiny --help`.\n") -> SftSample:
    return SftSample(
        instruction="Write the README for this project.",
        input=SampleInput(
            file_tree=("pyproject.toml", "src/tiny/__init__.py", f"src/tiny/mod{index}.py"),
            project_type="python",
            key_files=(KeyFile(path="pyproject.toml", content='[project]\nname = "tiny"\n'),),
        ),
        content=content,
        repo_url=f"https://example.com/tiny{index}",
        repo="tiny",
        kind="readme",
        split="train",
    )


# ---- config ---------------------------------------------------------------------------------


def test_profiles_ship_demo_cpu_gpu_3b_gpu_7b():
    assert available_profiles() == ["cpu", "demo", "gpu-3b", "gpu-7b"]


@pytest.mark.parametrize("profile", ["demo", "cpu", "gpu-3b", "gpu-7b"])
def test_every_profile_loads_and_opens_with_its_command(profile):
    from moxi_pipeline.training.train import CONFIGS_DIR

    config = load_train_config(profile)
    assert config.profile == profile
    first_line = (CONFIGS_DIR / f"train_{profile}.yaml").read_text().splitlines()[0]
    assert first_line.startswith("# ")
    assert f"MOXI_TRAIN_PROFILE={profile} " in first_line or f"--profile {profile} " in first_line


@pytest.mark.parametrize("profile", ["demo", "cpu", "gpu-3b", "gpu-7b"])
def test_every_setting_carries_a_comment(profile):
    from moxi_pipeline.training.train import CONFIGS_DIR

    settings = [line for line in (CONFIGS_DIR / f"train_{profile}.yaml").read_text().splitlines()
                if line and not line.startswith("#")]
    assert settings and all("  # " in line for line in settings), [line for line in settings if "  # " not in line]


@pytest.mark.parametrize("profile", ["demo", "gpu-3b", "gpu-7b"])
def test_profile_sets_every_field_explicitly(profile):
    import yaml

    from moxi_pipeline.training.train import CONFIGS_DIR, TrainConfig

    keys = set(yaml.safe_load((CONFIGS_DIR / f"train_{profile}.yaml").read_text()))
    assert keys == set(TrainConfig.model_fields) - {"profile", "report_to"}  # report_to comes from the environment


def test_gpu_3b_is_qlora_on_llama_with_unsloth_when_installed():
    from moxi_pipeline.training.train import CONFIGS_DIR

    config = load_train_config("gpu-3b")
    assert (config.quantization, config.dtype, config.backend, config.device) == ("4bit", "bfloat16", "auto", "cuda")
    assert "Llama-3.2-3B" in (CONFIGS_DIR / "train_gpu-3b.yaml").read_text().splitlines()[0]
    assert config.lora_dropout == 0.0  # Unsloth's fast path


def test_gpu_7b_is_qlora_r64_on_qwen_launched_by_accelerate():
    from moxi_pipeline.training.train import CONFIGS_DIR

    config = load_train_config("gpu-7b")
    assert (config.lora_r, config.lora_alpha, config.quantization, config.backend) == (64, 128, "4bit", "hf")
    first_line = (CONFIGS_DIR / "train_gpu-7b.yaml").read_text().splitlines()[0]
    assert "Qwen/Qwen2.5-7B" in first_line and "accelerate launch --multi_gpu --num_processes 4 -m moxi_pipeline.training.train" in first_line
    # early stopping reloads the best checkpoint, so checkpoints fall on eval steps
    assert config.save_steps % config.eval_steps == 0 and config.early_stopping_patience


def test_the_launch_command_parses_and_names_a_bad_override(capsys):
    from moxi_pipeline.training.train import main

    with pytest.raises(SystemExit) as exit_:
        main(["--profile", "gpu-7b", "--base-model", "m", "--dataset", "d.jsonl", "--out", "o", "--set", "lora_r=0"])
    assert exit_.value.code == 2
    assert "moxi train: train profile 'gpu-7b': lora_r=0: Input should be greater than 0" in capsys.readouterr().err


@pytest.mark.parametrize("profile", ["gpu-3b", "gpu-7b"])
def test_gpu_profiles_refuse_a_cpu_before_loading(profile, tmp_path):
    config = load_train_config(profile, device="cpu")
    with pytest.raises(ValueError, match="quantization='4bit' needs a CUDA GPU, but training runs on 'cpu'"):
        train_adapter(tmp_path / "no_model_here", [make_sample(0)], [], config, tmp_path / "out", "hash")


def test_overrides_win_over_the_profile():
    config = load_train_config("demo", max_steps=3, lora_r=4)
    assert (config.max_steps, config.lora_r) == (3, 4)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"lora_r": 0}, "lora_r=0"),
        ({"lora_r": -8}, "lora_r=-8"),
        ({"learning_rate": 0.0}, "learning_rate=0.0"),
        ({"lora_dropout": 1.5}, "lora_dropout=1.5"),
        ({"device": "tpu"}, "device='tpu'"),
        ({"quantization": "8bit"}, "quantization='8bit'"),
        ({"backend": "vllm"}, "backend='vllm'"),
        ({"target_modules": []}, "target_modules=[]"),
        ({"max_length": 128, "min_completion_tokens": 128}, "min_completion_tokens=128 must be below max_length=128"),
    ],
)
def test_bad_values_name_the_field_and_value(overrides, expected):
    with pytest.raises(ValueError, match="train profile 'demo'") as error:
        load_train_config("demo", **overrides)
    assert expected in str(error.value)


def test_unknown_profile_lists_the_available_ones():
    with pytest.raises(ValueError) as error:
        load_train_config("huge")
    assert "'huge'" in str(error.value) and "cpu, demo, gpu-3b, gpu-7b" in str(error.value)


def test_unknown_override_is_named():
    with pytest.raises(ValueError, match=r"\['lora_rank'\]"):
        load_train_config("demo", lora_rank=8)


# ---- GPU path on a CPU machine ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"quantization": "4bit"}, "quantization='4bit' needs a CUDA GPU, but training runs on 'cpu'"),
        ({"backend": "unsloth"}, "backend='unsloth' needs a CUDA GPU, but training runs on 'cpu'"),
    ],
)
def test_gpu_options_on_cpu_name_the_field(overrides, expected):
    with pytest.raises(ValueError, match=expected):
        check_runtime(load_train_config("demo", **overrides), "cpu")


@pytest.mark.parametrize(("overrides", "package"), [({}, "bitsandbytes"), ({"backend": "unsloth"}, "unsloth")])
def test_missing_gpu_package_says_how_to_install(monkeypatch, overrides, package):
    import importlib.util

    # only `package` is missing: the other GPU package (both absent on this CPU machine) counts as installed
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == package else object())
    with pytest.raises(ValueError, match=rf"'{package}' package is missing: .*pip install -e \.\[gpu\]"):
        check_runtime(load_train_config("gpu-3b", **overrides), "cuda")


@pytest.mark.parametrize(("installed", "device", "expected"), [
    (True, "cuda", "unsloth"), (False, "cuda", "hf"), (True, "cpu", "hf"),
])
def test_auto_backend_takes_unsloth_only_when_installed_on_cuda(monkeypatch, installed, device, expected):
    import importlib.util

    from moxi_pipeline.training.config import resolve_backend

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if installed else None)
    assert resolve_backend(load_train_config("gpu-3b"), device) == expected


def test_train_adapter_refuses_4bit_on_cpu_before_loading(tmp_path):
    config = load_train_config("demo", device="cpu", quantization="4bit")
    with pytest.raises(ValueError, match="quantization='4bit' needs a CUDA GPU"):
        train_adapter(tmp_path / "no_model_here", [make_sample(0)], [], config, tmp_path / "out", "hash")


def test_empty_train_split_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="train: no SFT samples"):
        train_adapter(tmp_path, [], [], load_train_config("demo"), tmp_path / "out", "hash")


# ---- truncation and masking ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt_len", "completion_len", "max_length", "min_completion", "kept_prompt", "kept_completion"),
    [
        (10, 5, 20, 4, 10, 5),  # fits: untouched
        (10, 10, 20, 4, 10, 10),  # exactly max_length: untouched
        (10, 30, 20, 4, 10, 10),  # long completion: its head fills what the prompt leaves
        (30, 10, 20, 4, 16, 4),  # long prompt: completion keeps min_completion, prompt loses its middle
        (30, 2, 20, 4, 18, 2),  # short completion is kept whole
        (100, 100, 20, 8, 12, 8),  # both long
    ],
)
def test_fit_to_length(prompt_len, completion_len, max_length, min_completion, kept_prompt, kept_completion):
    prompt, completion = list(range(prompt_len)), list(range(1000, 1000 + completion_len))
    new_prompt, new_completion = fit_to_length(prompt, completion, max_length, min_completion)
    assert (len(new_prompt), len(new_completion)) == (kept_prompt, kept_completion)
    assert new_completion == completion[:kept_completion]  # the completion keeps its head
    if kept_prompt < prompt_len:  # the prompt keeps both ends: system turn and instruction
        head = kept_prompt // 2
        assert new_prompt == prompt[:head] + prompt[prompt_len - (kept_prompt - head) :]


def test_prompt_tokens_are_masked_and_completion_tokens_are_not(tiny_model_dir):
    from moxi_pipeline.models.base import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    row = tokenize_sample(tokenizer, make_sample(0), max_length=4096, min_completion_tokens=16)
    ids, mask = row["input_ids"], row["completion_mask"]
    n_prompt = mask.index(1)
    assert mask == [0] * n_prompt + [1] * (len(ids) - n_prompt)
    prompt_text = tokenizer.decode(ids[:n_prompt])
    assert prompt_text.endswith("Write the README for this project.<|im_end|>\n<|im_start|>assistant\n")
    assert tokenizer.decode(ids[n_prompt:]) == make_sample(0).content + "<|im_end|>\n"


@pytest.mark.parametrize("content", ["    >>> import tiny", "        nested", "\n\n## Usage"])
def test_completion_opening_with_whitespace_is_located(tiny_model_dir, content):
    # Regression: tokenizing prompt+completion as one text let BPE merge the "\n" after `assistant` with the
    # completion's leading spaces (seen on real READMEs: indented doctest chunks),
    # and the prompt ids were no longer a prefix, which failed the whole lora_adapter run.
    from moxi_pipeline.models.base import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    row = tokenize_sample(tokenizer, make_sample(0, content), max_length=4096, min_completion_tokens=16)
    n_prompt = row["completion_mask"].index(1)
    assert tokenizer.decode(row["input_ids"][n_prompt:]) == content + "<|im_end|>\n"


def test_trl_labels_ignore_the_prompt(tiny_model_dir, tmp_path):
    """The labels TRL really trains on: -100 over every prompt token, the token id over the completion."""
    from trl import SFTConfig, SFTTrainer

    from moxi_pipeline.models.base import load_tokenizer
    from moxi_pipeline.training.train import build_dataset, lora_config

    config = load_train_config("demo", max_length=96, min_completion_tokens=32)
    tokenizer = load_tokenizer(tiny_model_dir)
    long_answer = "# tiny\n\n" + "Run `tiny --help` to see the options. " * 20  # far over 32 tokens
    dataset = build_dataset(tokenizer, [make_sample(0, long_answer), make_sample(1)], config)
    trainer = SFTTrainer(
        model=str(tiny_model_dir),
        args=SFTConfig(
            output_dir=str(tmp_path), max_length=96, completion_only_loss=True, report_to="none",
            use_cpu=True, bf16=False, gradient_checkpointing=False,
        ),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(config),
    )
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    rows = {tuple(row["input_ids"]): row["completion_mask"] for row in dataset}
    for input_ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist()):
        mask = next(m for ids, m in rows.items() if list(ids) == input_ids[: len(ids)])
        n_prompt, n_real = mask.index(1), len(mask)
        assert labels[:n_prompt] == [-100] * n_prompt
        assert labels[n_prompt:n_real] == input_ids[n_prompt:n_real]
        assert labels[n_real:] == [-100] * (len(labels) - n_real)  # padding
    long_row = dataset[0]  # the long answer is cut to min_completion_tokens, its prompt to the other 64
    assert (len(long_row["input_ids"]), long_row["completion_mask"].count(1)) == (96, 32)


# ---- a real run on the tiny model ------------------------------------------------------------


def snapshot_trained_model(monkeypatch) -> dict:
    """Keep the model train_adapter trains, plus a copy of its weights before LoRA or training touched them."""
    from moxi_pipeline.training import train as train_module

    captured: dict = {}
    real_load = train_module.load_for_training

    def spy(*args, **kwargs):
        model, tokenizer, peft_config = real_load(*args, **kwargs)
        captured["model"] = model  # get_peft_model injects LoRA into this same object
        captured["before"] = {name: param.detach().clone() for name, param in model.named_parameters()}
        return model, tokenizer, peft_config

    monkeypatch.setattr(train_module, "load_for_training", spy)
    return captured


def assert_only_lora_changed(model, before: dict) -> None:
    """TRL's LoRA test: every lora_B moved off its zero init, every base weight is bit-identical."""
    import torch

    lora_b = {name: param for name, param in model.named_parameters() if "lora_B" in name}
    assert lora_b and all(param.abs().sum() > 0 for param in lora_b.values())
    base = {name: param for name, param in model.named_parameters() if "lora_" not in name}
    assert len(base) == len(before)
    for name, param in base.items():
        assert torch.equal(param, before[name.replace(".base_layer", "")]), name


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir, tmp_path_factory):
    config = load_train_config(
        "demo", max_steps=4, device="cpu", dtype="float32", learning_rate=1e-2, warmup_steps=0, logging_steps=1,
        per_device_train_batch_size=2, gradient_accumulation_steps=1, max_length=128, min_completion_tokens=32,
    )
    logs: list[dict] = []
    out_dir = tmp_path_factory.mktemp("adapter")
    samples = [make_sample(i) for i in range(6)]
    with pytest.MonkeyPatch.context() as monkeypatch:
        captured = snapshot_trained_model(monkeypatch)
        result = train_adapter(tiny_model_dir, samples, samples[:2], config, out_dir, "abc123", progress=logs.append)
    return result, captured, logs, out_dir


def test_run_reports_steps_tokens_and_losses(tiny_run):
    result, _, logs, _ = tiny_run
    assert result.steps == 4
    assert [step for step, _ in result.losses] == [1, 2, 3, 4]
    assert result.train_tokens > 0 and result.tokens_per_s > 0
    assert result.eval_loss is not None and result.eval_loss > 0
    assert [log["step"] for log in logs if "loss" in log] == [1, 2, 3, 4]
    assert result.dataset_hash == "abc123"
    assert result.dtype == "float32"  # what the profile's dtype came to on this machine


def test_run_saves_adapter_card_config_log_and_plot(tiny_run):
    result, _, _, out_dir = tiny_run
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "README.md",
                 "training_config.json", "train_log.json", "loss_curve.png"):
        assert (out_dir / name).is_file(), name
    assert not list(out_dir.glob("checkpoint-*")) and not (out_dir / "training_args.bin").exists()
    saved = json.loads((out_dir / "training_config.json").read_text())
    assert saved["dataset_hash"] == "abc123" and saved["config"]["max_steps"] == 4
    assert "abc123" in (out_dir / "README.md").read_text()
    assert result.loss_plot == str(out_dir / "loss_curve.png")


def test_lora_weights_changed_and_base_weights_did_not(tiny_run):
    _, captured, _, _ = tiny_run
    assert_only_lora_changed(captured["model"], captured["before"])


def test_saved_adapter_reloads_with_the_trained_weights(tiny_run, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    _, captured, _, out_dir = tiny_run
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), str(out_dir))
    trained = {name: param for name, param in captured["model"].named_parameters() if "lora_" in name}
    loaded = {name.removeprefix("base_model.model."): p for name, p in reloaded.named_parameters() if "lora_" in name}
    assert trained.keys() == loaded.keys()
    assert all(torch.equal(trained[name], loaded[name]) for name in trained)


# ---- experiment trackers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("installed", "wandb_key", "comet_key", "expected"),
    [
        (set(), False, False, ()),
        ({"tensorboard"}, False, False, ("tensorboard",)),  # TensorBoard whenever installed: logs stay local
        (set(), True, False, ("wandb",)),
        ({"tensorboard"}, True, True, ("tensorboard", "wandb", "comet_ml")),
    ],
)
def test_trackers_follow_the_keys_that_are_set(monkeypatch, installed, wandb_key, comet_key, expected):
    import importlib.util

    from moxi_pipeline.training.config import trackers

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name in installed else None)
    assert trackers(wandb_key, comet_key) == expected


def test_a_tracker_without_its_package_is_named(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"report_to='comet_ml' needs the 'comet_ml' package: `pip install comet_ml`"):
        check_runtime(load_train_config("demo", report_to=["comet_ml"]), "cpu")


def test_trackers_reach_the_trainer_arguments(tmp_path):
    from moxi_pipeline.training.train import sft_config

    assert sft_config(load_train_config("demo", report_to=["wandb"]), tmp_path, "cpu", has_eval=False).report_to == ["wandb"]
    assert sft_config(load_train_config("demo"), tmp_path, "cpu", has_eval=False).report_to == []  # "none"


JEMALLOC_LIBS = [p for p in ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2")
                 if os.path.exists(p)]


def test_the_allocator_is_read_from_the_process_and_glibc_on_the_cpu_is_warned_about(caplog):
    from moxi_pipeline.training.train import allocator, warn_about_allocator

    code = "from moxi_pipeline.training.train import allocator; print(allocator())"
    plain = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"})
    assert plain.stdout.strip() == "glibc"
    if JEMALLOC_LIBS:  # Debian's libjemalloc2 (make test installs it where it can)
        preloaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                                   env={**os.environ, "LD_PRELOAD": JEMALLOC_LIBS[0]})
        assert preloaded.stdout.strip() == "jemalloc"
    with caplog.at_level("WARNING"):
        name = warn_about_allocator("cpu")
    assert name == allocator()
    assert ("libjemalloc.so.2" in caplog.text) == (name == "glibc")
    caplog.clear()
    with caplog.at_level("WARNING"):
        warn_about_allocator("cuda")
    assert caplog.text == ""
