"""bf16 against float32 on this CPU: what `compute_dtype("cpu")` ('auto') picks, and whether it picks right.

    .venv/bin/python benchmarks/cpu_dtype.py [--base-model DIR] [--new-tokens 32]

Two measures, each in both dtypes, in one run:
  (a) matmul GFLOP/s at a LoRA training step's shape (768 tokens x SmolLM2's hidden 576 x its MLP's 1,536),
      on all of the process's threads;
  (b) greedy generation tokens/s of the base model (the embedded one, imported once, by default), 4 prompts of
      200 tokens in one batch, `--new-tokens` each.

A CPU with AVX-512 BF16 or AMX multiplies bf16 in hardware and 'auto' takes bf16 there; without either
PyTorch emulates bf16 and 'auto' takes float32. The last line is exactly:

    cpu_dtype: capability=<torch's> native_bf16=<True|False> auto=<dtype> matmul_bf16_over_fp32=<x> generate_bf16_over_fp32=<y>
"""

from __future__ import annotations

import argparse
import time


def matmul_gflops(dtype, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(768, 576, dtype=dtype), torch.randn(576, 1536, dtype=dtype)
    a @ b  # warm-up: oneDNN builds its kernel on the first call
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * 768 * 576 * 1536 * repeats / (time.perf_counter() - started) / 1e9


def generate_tokens_per_s(base_model: str, dtype, new_tokens: int) -> float:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype).eval()
    ids = torch.randint(100, 10_000, (4, 200), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        model.generate(ids[:, :20], attention_mask=torch.ones_like(ids[:, :20]), max_new_tokens=2, do_sample=False)
        started = time.perf_counter()
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, do_sample=False)
    return (out.shape[1] - ids.shape[1]) * ids.shape[0] / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-model", help="a saved model folder (default: the data folder's base_model)")
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()

    import torch

    from moxi_pipeline.models.base import compute_dtype, cpu_has_native_bf16, import_base_model
    from moxi_pipeline.settings import load_settings

    base_model = args.base_model or import_base_model("embedded", load_settings().models_dir / "base_model").path
    rows = {}
    for dtype in (torch.float32, torch.bfloat16):
        rows[dtype] = (matmul_gflops(dtype), generate_tokens_per_s(base_model, dtype, args.new_tokens))
    print("| dtype | matmul GFLOP/s (768x576 @ 576x1536) | generation tokens/s (4 x 200-token prompts) |")
    print("|---|---|---|")
    for dtype, (gflops, tokens) in rows.items():
        print(f"| {str(dtype).removeprefix('torch.')} | {gflops:.1f} | {tokens:.1f} |")
    fp32, bf16 = rows[torch.float32], rows[torch.bfloat16]
    print(f"cpu_dtype: capability={torch.backends.cpu.get_cpu_capability()} native_bf16={cpu_has_native_bf16()} "
          f"auto={str(compute_dtype('cpu')).removeprefix('torch.')} matmul_bf16_over_fp32={bf16[0] / fp32[0]:.2f} "
          f"generate_bf16_over_fp32={bf16[1] / fp32[1]:.2f}")


if __name__ == "__main__":
    main()
