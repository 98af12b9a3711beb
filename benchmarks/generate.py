"""One prompt at a time against batched generation: the same section prompts, the same greedy decoding.

    .venv/bin/python benchmarks/generate.py [--records FILE.jsonl] [--prompts 8] [--batch 8] [--new-tokens 96]

Prompts are the About/Features/Usage section prompts `moxi generate` builds, for repositories from the
records file (default: the installed packages, offline). Every generation runs its full token budget
(min_new_tokens = max_new_tokens), so both sides produce the same number of tokens and the ratio is
throughput alone. Prints a table, then exactly:
    generate: speedup=<x> single_tok_s=<a> batched_tok_s=<b>
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from moxi_pipeline.collect import collect_repos
from moxi_pipeline.compose import section_messages
from moxi_pipeline.facts import repo_facts
from moxi_pipeline.modeling import load_model, load_tokenizer
from moxi_pipeline.settings import load_settings


def section_prompts(records, count: int, tokenizer) -> list[list[int]]:
    prompts = []
    for record in records:
        facts = repo_facts(record)
        for section in ("about", "features", "usage"):
            text = tokenizer.apply_chat_template(section_messages(section, record, facts), add_generation_prompt=True,
                                                 tokenize=False)
            prompts.append(tokenizer(text, add_special_tokens=False).input_ids)
            if len(prompts) == count:
                return prompts
    return prompts


def run(model, tokenizer, prompts: list[list[int]], batch: int, new_tokens: int) -> float:
    """Seconds to generate new_tokens for every prompt, `batch` prompts (left-padded) at a time."""
    import torch

    pad = tokenizer.pad_token_id
    started = time.perf_counter()
    for start in range(0, len(prompts), batch):
        group = prompts[start : start + batch]
        width = max(len(p) for p in group)
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in group])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in group])
        with torch.no_grad():
            model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                           do_sample=False, pad_token_id=pad)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", help="a .jsonl records file (default: installed packages)")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=96)
    args = parser.parse_args()
    settings = load_settings()
    base = settings.models_dir / "base_model"
    if not (Path(base) / "config.json").is_file():
        raise SystemExit(f"no base model at {base}: run `make demo` (or materialize base_model) first")
    records = collect_repos("jsonl", args.records).records if args.records else collect_repos("installed", limit=8).records
    tokenizer, model = load_tokenizer(base), load_model(base, "cpu")
    # sorted by length, as compose batches them, so a batch pads little
    prompts = sorted(section_prompts(records, args.prompts, tokenizer), key=len)
    run(model, tokenizer, prompts[:1], 1, 8)  # warm-up: first-call allocations are not throughput
    tokens = len(prompts) * args.new_tokens
    single = tokens / run(model, tokenizer, prompts, 1, args.new_tokens)
    batched = tokens / run(model, tokenizer, prompts, args.batch, args.new_tokens)
    print(f"| mode | prompts | new tokens each | tokens/s |\n|---|---|---|---|")
    print(f"| one at a time | {len(prompts)} | {args.new_tokens} | {single:.1f} |")
    print(f"| batch {args.batch} | {len(prompts)} | {args.new_tokens} | {batched:.1f} |")
    print(f"generate: speedup={batched / single:.2f} single_tok_s={single:.1f} batched_tok_s={batched:.1f}")


if __name__ == "__main__":
    main()
