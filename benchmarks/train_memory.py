"""Resident memory across a CPU training run: how it grows step after step, and what changes it.

    .venv/bin/python benchmarks/train_memory.py [--records ../shared/corpus/train.jsonl] [--steps 5]
        [--accumulation 8] [--max-length 768] [--base-model DIR] [--variants before,mmap1m]

Each variant trains the `cpu` profile's LoRA (bf16, batch 1, completion logits only, `--accumulation` samples an
optimizer step: the profile's 8) on the same real section samples, in its own process (a fresh heap). A
TrainerCallback reads VmRSS from /proc/self/status and the minor page faults from getrusage at every step end.
Variants (the first is the baseline, the second the candidate the last line compares with it):

  before   the training as `train_adapter` runs it
  trim     glibc's `malloc_trim(0)` at every step end
  mmap1m   MALLOC_MMAP_THRESHOLD_=1 MiB: every block of 1 MiB or more is mmapped, returned to the OS when freed
  arena2   MALLOC_ARENA_MAX=2
  onednn0  ONEDNN_PRIMITIVE_CACHE_CAPACITY=0: no cached oneDNN kernels per shape
  jemalloc LD_PRELOAD of Debian's libjemalloc2 instead of glibc's malloc
  pad64    every micro-batch padded to a multiple of 64 tokens (SFTConfig.pad_to_multiple_of): shapes repeat

Every sample has its own length (batch 1, no padding), so every micro-batch allocates activations of new sizes.
The last line is exactly:

    train_memory: rss_growth_mb_before=<a> rss_growth_mb_after=<b>

growth = RSS at the last step minus RSS at step 2 (step 1 allocates the AdamW moments and warms caches);
`after` is the second variant.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANT_ENV = {  # environment a variant's process starts with (glibc reads its tunables at start)
    "arena2": {"MALLOC_ARENA_MAX": "2"},
    "onednn0": {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "0"},
    "mmap1m": {"MALLOC_MMAP_THRESHOLD_": str(2**20)},  # fixed: blocks >= 1 MiB are mmapped, returned on free
    # jemalloc instead of glibc malloc (Debian's libjemalloc2; `make install` installs it as root): size classes and
    # per-arena decay return freed pages, the allocator PyTorch's CPU performance guide recommends
    "jemalloc": {"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"},
}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def trim_callback():
    """glibc's malloc_trim(0) at every step end: the freed heap memory goes back to the OS."""
    import ctypes

    from transformers import TrainerCallback

    trim = ctypes.CDLL("libc.so.6").malloc_trim

    class TrimCallback(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            trim(0)

    return TrimCallback()


def section_samples(records_path: str, count: int):
    from moxi_pipeline.collect import collect_repos
    from moxi_pipeline.dataset.chunk import chunk_records
    from moxi_pipeline.dataset.samples import DatasetConfig, build_sft_dataset

    records = collect_repos("jsonl", records_path).records[: max(20, count)]  # enough repositories, fast to chunk
    samples = build_sft_dataset(records, chunk_records(records), DatasetConfig())
    return [s for s in samples if s.split == "train"][:count]


def run_variant(variant: str, base_model: str, records: str, steps: int, max_length: int, accumulation: int) -> list[dict]:
    """Train `steps` one-sample steps in this process; one row per step."""
    import resource

    from transformers import TrainerCallback

    from moxi_pipeline.training.train import (
        build_dataset,
        import_backend,
        load_for_training,
        load_train_config,
        sft_config,
    )

    rows: list[dict] = []

    class MemoryCallback(TrainerCallback):
        last = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            now = time.perf_counter()
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            rows.append({"step": state.global_step, "rss_mb": round(rss_mb(), 1), "step_s": round(now - self.last, 2),
                         "minflt": faults})
            print(f"{variant} {rows[-1]}", file=sys.stderr, flush=True)  # progress, for a run watched live
            self.last = now

    config = load_train_config("cpu", device="cpu", max_steps=steps, gradient_accumulation_steps=accumulation, save_steps=0,
                               warmup_steps=0, logging_steps=1, max_length=max_length,
                               min_completion_tokens=min(160, max_length // 4))
    samples = section_samples(records, steps * accumulation)
    model, tokenizer, peft_config = load_for_training(base_model, config, "cpu")
    callbacks = [MemoryCallback()]
    if variant == "trim":
        callbacks.insert(0, trim_callback())  # trims before the RSS is read
    with tempfile.TemporaryDirectory() as tmp:
        args = sft_config(config, Path(tmp), "cpu", has_eval=False)
        if variant == "pad64":
            args.pad_to_multiple_of = 64  # padding is label -100 and masked: the loss is unchanged
        trainer = import_backend("hf", config.completion_logits_only)(
            model=model, args=args,
            train_dataset=build_dataset(tokenizer, samples, config), processing_class=tokenizer,
            peft_config=peft_config, callbacks=callbacks)
        trainer.train()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", default="../shared/corpus/train.jsonl")
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps per variant")
    parser.add_argument("--base-model", default=None, help="a model folder (default: the embedded SmolLM2, imported once)")
    parser.add_argument("--max-length", type=int, default=768, help="the cpu profile's; shorter runs faster")
    parser.add_argument("--accumulation", type=int, default=8, help="samples per optimizer step (the cpu profile's)")
    parser.add_argument("--variants", default="before,mmap1m", help="baseline,candidate[,more...]")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: run one variant, print JSON
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_variant(args.child, args.base_model, args.records, args.steps, args.max_length,
                                     args.accumulation)))
        return
    from moxi_pipeline.models.base import import_base_model
    from moxi_pipeline.settings import load_settings

    base_model = args.base_model or import_base_model("embedded", load_settings().models_dir / "base_model").path
    results = {}
    for variant in args.variants.split(","):
        out = subprocess.run([sys.executable, __file__, "--child", variant, "--base-model", str(base_model),
                              "--records", args.records, "--steps", str(args.steps), "--max-length", str(args.max_length),
                              "--accumulation", str(args.accumulation)],
                             check=True, stdout=subprocess.PIPE, text=True, env={**os.environ, **VARIANT_ENV.get(variant, {})})
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    print(f"\n{cpu}, {os.cpu_count()} cores, {args.steps} steps of {args.accumulation} samples per variant "
          f"(cpu profile, bf16, max_length {args.max_length}); page faults: minor, cumulative\n")
    names = list(results)
    print("| step | " + " | ".join(f"{n} RSS MB | {n} s/step | {n} page faults" for n in names) + " |")
    print("|---" * (1 + 3 * len(names)) + "|")
    shown = sorted({1, 2, 5, 10, 20, 30, 40, 60, 80, args.steps} & set(range(1, args.steps + 1)))
    for step in shown:
        cells = []
        for name in names:
            row = results[name][step - 1]
            cells += [f"{row['rss_mb']:.0f}", f"{row['step_s']:.1f}", str(row["minflt"])]
        print(f"| {step} | " + " | ".join(cells) + " |")
    growth = [rows[-1]["rss_mb"] - rows[1]["rss_mb"] for rows in results.values()]
    print(f"\ntrain_memory: rss_growth_mb_before={growth[0]:.0f} "
          f"rss_growth_mb_after={growth[1] if len(growth) > 1 else float('nan'):.0f}")


if __name__ == "__main__":
    main()
