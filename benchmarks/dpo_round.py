"""One more round of on-policy DPO (docs/results.md, row 5d): a DPO adapter answers the next train prompts, and
DPO continues from it, with it as the frozen reference.

    .venv/bin/python benchmarks/dpo_round.py --base data/models/base_model --adapter data/models/dpo_adapter/RUN \
        --sft data/sft --skip 192 --pairs 192 --profile cpu --out data/models/dpo_round2

Round 1 is the `dpo_adapter` asset (the SFT adapter's own answers to the first `max_pairs` train prompts);
round 2 takes the prompts after them (`--skip`), so no prompt is trained on twice. Answers resume from
`OUT/progress.jsonl`, the adapter lands in `OUT/adapter`; then score it with
`moxi evaluate --records dev.jsonl --adapter OUT/adapter --baseline`. Prints a table of what each stage took.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from moxi_pipeline.dataset.samples import load_sft_dataset
from moxi_pipeline.models.writer import WriterSpec, load_writer
from moxi_pipeline.training.dpo import load_dpo_config, train_dpo
from moxi_pipeline.training.preferences import build_preference_pairs, write_pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the base model folder (data/models/base_model)")
    parser.add_argument("--adapter", required=True, help="the DPO adapter of the round before")
    parser.add_argument("--sft", required=True, help="the sft_dataset folder (data/sft)")
    parser.add_argument("--skip", type=int, required=True, help="train prompts the rounds before used")
    parser.add_argument("--pairs", type=int, default=192, help="train prompts to answer in this round")
    parser.add_argument("--profile", default="cpu", help="configs/dpo_<profile>.yaml")
    parser.add_argument("--device", default="cpu", help="auto | cpu | cuda")
    parser.add_argument("--out", required=True, help="progress.jsonl, pairs.jsonl and adapter/ go here")
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    samples = load_sft_dataset(Path(args.sft))
    train = [s for s in samples if s.split == "train"]
    later = train[args.skip : args.skip + args.pairs]
    if not later:
        raise SystemExit(f"--skip {args.skip}: the dataset has only {len(train)} train prompts")
    config = load_dpo_config(args.profile, device=args.device, max_pairs=args.pairs)
    pair_config = config.preference_config()

    start = time.time()
    model, tokenizer = load_writer(WriterSpec(Path(args.base), Path(args.adapter)), args.device)
    result = build_preference_pairs(model, tokenizer, later, pair_config, out / "progress.jsonl")
    write_pairs(result.pairs, out / "pairs.jsonl")
    pairs_s = time.time() - start
    del model

    start = time.time()
    trained = train_dpo(args.base, args.adapter, result.pairs, config, out / "adapter")
    dpo_s = time.time() - start
    losses = [row for row in trained.history if "loss" in row]

    print("| stage | what | took |")
    print("|---|---|---|")
    print(f"| pairs | {len(result.pairs)} of {len(later)} prompts {args.skip}..{args.skip + len(later) - 1}; "
          f"chosen median {statistics.median(len(p.chosen) for p in result.pairs):.0f} chars, rejected median "
          f"{statistics.median(len(p.rejected) for p in result.pairs):.0f}; skipped {result.skipped} | {pairs_s:.0f} s |")
    print(f"| DPO | {trained.steps} steps; loss {losses[0]['loss']:.3f} -> {losses[-1]['loss']:.3f}, reward margin "
          f"{losses[0].get('rewards/margins', 0):.2f} -> {losses[-1].get('rewards/margins', 0):.2f} | {dpo_s:.0f} s |")
    print(f"adapter: {out / 'adapter'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
