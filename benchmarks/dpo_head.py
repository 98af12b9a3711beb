"""DPO step time with TRL's fused LM head scoring every position (TRL's CPU default) against only the positions
with a label (`training.backends.fused_head_on_labelled_positions`, what `train_dpo` now uses).

    .venv/bin/python benchmarks/dpo_head.py --base data/models/base_model --adapter data/models/lora_adapter/RUN \
        --pairs data/preferences/RUN/pairs.jsonl --steps 3

Both runs train the same adapter on the same first `--steps` pairs (one pair a step, the `cpu` DPO profile's
learning rate and length), in one process, alternating so a machine's drift hits both; the first step of each run
is a warm-up and is not counted. Prints a table, then the ratio as its last line.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from transformers import AutoTokenizer, TrainerCallback

from moxi_pipeline.training import dpo
from moxi_pipeline.training.preferences import read_pairs


class StepTimes(TrainerCallback):
    def __init__(self):
        self.times: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._start)


def run(base: str, adapter: str, pairs, steps: int, labelled_only: bool) -> list[float]:
    config = dpo.load_dpo_config("cpu", max_steps=steps, gradient_accumulation_steps=1, save_steps=0,
                                 logging_steps=steps)
    timer = StepTimes()
    original = dpo.fused_head_on_labelled_positions
    if not labelled_only:
        dpo.fused_head_on_labelled_positions = contextlib.nullcontext
    try:
        with tempfile.TemporaryDirectory() as out:
            dpo.train_dpo(base, adapter, pairs[:steps], config, Path(out) / "adapter", callbacks=[timer])
    finally:
        dpo.fused_head_on_labelled_positions = original
    return timer.times[1:]  # the first step warms up allocator and threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the base model folder")
    parser.add_argument("--adapter", required=True, help="the SFT adapter DPO continues")
    parser.add_argument("--pairs", required=True, help="a pairs.jsonl of the preference_pairs asset")
    parser.add_argument("--steps", type=int, default=3, help="DPO steps a run, one pair each (the first is a warm-up)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each kind, alternating")
    args = parser.parse_args(argv)

    pairs = read_pairs(args.pairs)
    tokenizer = AutoTokenizer.from_pretrained(args.base)

    def tokens(text: str) -> int:
        return len(tokenizer(text)["input_ids"])

    lengths = [(len(tokenizer.apply_chat_template(p.prompt, tokenize=True, add_generation_prompt=True)["input_ids"]),
                tokens(p.chosen), tokens(p.rejected)) for p in pairs[: args.steps]]
    head = len(tokenizer)
    every, labelled = [], []
    for _ in range(args.rounds):
        every += run(args.base, args.adapter, pairs, args.steps, labelled_only=False)
        labelled += run(args.base, args.adapter, pairs, args.steps, labelled_only=True)
    a, b = statistics.median(every), statistics.median(labelled)
    print(f"base model: {args.base} (vocabulary {head:,}); {len(every)} timed steps of each kind, one pair a step")
    prompt, chosen, rejected = (statistics.median(x) for x in zip(*lengths))
    print(f"median tokens a pair: prompt {prompt:.0f}, chosen {chosen:.0f}, rejected {rejected:.0f} "
          f"(the head scores 2 x prompt + chosen + rejected positions, or only chosen + rejected)")
    print("| LM head scores | median s/step | steps |")
    print("|---|---|---|")
    print(f"| every position (TRL's CPU default) | {a:.1f} | {', '.join(f'{t:.1f}' for t in every)} |")
    print(f"| labelled positions only | {b:.1f} | {', '.join(f'{t:.1f}' for t in labelled)} |")
    print(f"DPO step, LM head on labelled positions only: {a / b:.2f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
