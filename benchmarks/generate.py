"""One prompt at a time against batched generation: the same section prompts, the same greedy decoding.

    .venv/bin/python benchmarks/generate.py [--records FILE.jsonl] [--prompts 24] [--batch 8] [--new-tokens N]

Prompts are the About/Features/Usage section prompts `moxi generate` builds, for repositories from the
records file (default: the installed packages, offline), each with its section's token budget
(`compose.SECTION_TOKENS`; `--new-tokens` gives every prompt the same one instead). Batches are formed as
`moxi generate` forms them: by section, then by prompt length. Every generation runs its full budget
(min_new_tokens = max_new_tokens), so both sides produce the same tokens and the ratio is throughput
alone. Prefill (the prompts, ~400-600 tokens each) costs the same either way; batching speeds up decoding.
Prints a table, then exactly:
    generate: speedup=<x> single_tok_s=<a> batched_tok_s=<b>
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from moxi_pipeline.collect import collect_repos
from moxi_pipeline.models.base import load_model, load_tokenizer
from moxi_pipeline.readme.compose import SECTION_TOKENS, section_messages
from moxi_pipeline.readme.facts import repo_facts
from moxi_pipeline.settings import load_settings


def section_prompts(records, count: int, tokenizer) -> list[tuple[str, list[int]]]:
    """(section, prompt ids) for up to `count` prompts, three sections per repository."""
    prompts = []
    for record in records:
        facts = repo_facts(record)
        for section in ("about", "features", "usage"):
            text = tokenizer.apply_chat_template(section_messages(section, record, facts), add_generation_prompt=True,
                                                 tokenize=False)
            prompts.append((section, tokenizer(text, add_special_tokens=False).input_ids))
            if len(prompts) == count:
                return prompts
    return prompts


def run(model, tokenizer, prompts: list[tuple[int, list[int]]], batch: int) -> float:
    """Seconds to generate each (budget, prompt)'s budget, `batch` prompts (left-padded) of one budget at a time."""
    import torch

    pad = tokenizer.pad_token_id
    started = time.perf_counter()
    for budget, group in batches(prompts, batch):
        new_tokens = budget
        width = max(len(p) for p in group)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in group])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in group])
        with torch.no_grad():
            model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                           do_sample=False, pad_token_id=pad)
    return time.perf_counter() - started


def batches(prompts: list[tuple[int, list[int]]], size: int):
    """(budget, prompts) groups of at most `size`, one budget each, in order (prompts come sorted)."""
    group: list[list[int]] = []
    for index, (budget, ids) in enumerate(prompts):
        group.append(ids)
        if len(group) == size or index + 1 == len(prompts) or prompts[index + 1][0] != budget:
            yield budget, group
            group = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", help="a .jsonl records file (default: installed packages)")
    parser.add_argument("--prompts", type=int, default=24, help="8 repositories x 3 sections by default")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, help="one budget for every prompt (default: per section)")
    args = parser.parse_args()
    settings = load_settings()
    base = settings.models_dir / "base_model"
    if not (Path(base) / "config.json").is_file():
        raise SystemExit(f"no base model at {base}: run `make demo` (or materialize base_model) first")
    records = collect_repos("jsonl", args.records).records if args.records else collect_repos("installed", limit=8).records
    tokenizer, model = load_tokenizer(base), load_model(base, "cpu")
    # by budget, then length, as compose batches them, so a batch pads little
    prompts = sorted(((args.new_tokens or SECTION_TOKENS[section], ids)
                      for section, ids in section_prompts(records, args.prompts, tokenizer)),
                     key=lambda item: (item[0], len(item[1])))
    run(model, tokenizer, [(8, prompts[0][1])], 1)  # warm-up: first-call allocations are not throughput
    tokens = sum(budget for budget, _ in prompts)
    single = tokens / run(model, tokenizer, prompts, 1)
    batched = tokens / run(model, tokenizer, prompts, args.batch)
    budgets = "/".join(str(b) for b in sorted({budget for budget, _ in prompts}))
    lengths = [len(ids) for _, ids in prompts]
    print(f"{len(prompts)} prompts of {min(lengths)}-{max(lengths)} tokens; new tokens per prompt: {budgets}; {tokens} in all")
    print(f"| mode | tokens/s | seconds |\n|---|---|---|")
    print(f"| one at a time | {single:.1f} | {tokens / single:.1f} |")
    print(f"| batch {args.batch} | {batched:.1f} | {tokens / batched:.1f} |")
    print(f"generate: speedup={batched / single:.2f} single_tok_s={single:.1f} batched_tok_s={batched:.1f}")


if __name__ == "__main__":
    main()
