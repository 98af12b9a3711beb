"""The dtype a model is held and run in: bf16 only where the hardware multiplies it natively."""

from __future__ import annotations

import pytest
import torch

from moxi_pipeline.models.base import compute_dtype, cpu_has_native_bf16
from moxi_pipeline.training.config import load_train_config


@pytest.fixture
def cpu_features(monkeypatch):
    """Set which of AVX-512 BF16 and AMX this CPU reports."""
    def set_features(avx512_bf16: bool, amx: bool):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    return set_features


@pytest.mark.parametrize("avx512_bf16, amx, expected", [
    (True, False, torch.bfloat16),   # AMD EPYC (Zen 4), Intel Cooper Lake
    (True, True, torch.bfloat16),    # Intel Sapphire Rapids and later
    (False, False, torch.float32),   # AVX2 only (AMD EPYC Zen 3): bf16 would be emulated
])
def test_auto_is_bf16_only_on_a_cpu_with_native_bf16(cpu_features, avx512_bf16, amx, expected):
    cpu_features(avx512_bf16, amx)
    assert cpu_has_native_bf16() == (expected == torch.bfloat16)
    assert compute_dtype("cpu") == expected


def test_auto_is_bf16_on_a_gpu_and_an_explicit_dtype_is_kept(cpu_features):
    cpu_features(False, False)
    assert compute_dtype("cuda") == torch.bfloat16
    assert compute_dtype("cpu", "bfloat16") == torch.bfloat16
    assert compute_dtype("cuda", "float32") == torch.float32


def test_a_cpu_whose_torch_cannot_say_gets_float32(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert compute_dtype("cpu") == torch.float32


def test_an_unknown_dtype_is_a_clear_error():
    with pytest.raises(ValueError, match="dtype must be 'auto', 'bfloat16' or 'float32', got 'fp8'"):
        compute_dtype("cpu", "fp8")


@pytest.mark.parametrize("profile", ["demo", "cpu"])
def test_the_cpu_profiles_choose_their_dtype_by_machine(profile):
    assert load_train_config(profile).dtype == "auto"


@pytest.mark.parametrize("native, bf16", [(True, True), (False, False)])
def test_dpo_autocasts_to_bf16_only_on_a_cpu_with_native_bf16(cpu_features, tmp_path, native, bf16):
    # TRL's DPOConfig turns bf16 on by default: emulated on an AVX2 CPU, a demo DPO step took 206 s, not 7.4
    from moxi_pipeline.training.dpo import dpo_args, load_dpo_config

    cpu_features(native, False)
    args = dpo_args(load_dpo_config("demo", device="cpu"), tmp_path)
    assert (args.use_cpu, args.bf16) == (True, bf16)


def test_sft_autocasts_to_bf16_on_a_gpu_only_and_by_the_same_rule(cpu_features, monkeypatch, tmp_path):
    import trl

    from moxi_pipeline.training.train import sft_config

    cpu_features(True, False)
    monkeypatch.setattr(trl, "SFTConfig", lambda **kwargs: kwargs)  # the arguments, not TRL's GPU check
    for dtype, quantization, expected in (("auto", "none", True), ("bfloat16", "none", True),
                                          ("float32", "none", False), ("float32", "4bit", True)):
        config = load_train_config("demo", dtype=dtype, quantization=quantization)
        assert sft_config(config, tmp_path, "cuda", False)["bf16"] is expected, (dtype, quantization)
    assert sft_config(load_train_config("demo"), tmp_path, "cpu", False)["bf16"] is False  # weights hold the dtype
