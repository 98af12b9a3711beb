"""Does the decoding discipline earn its keep? Naive prompt vs disciplined prompt+decoding, zero-shot.

    .venv/bin/python benchmarks/bench_generate.py ../shared/corpus/dev.jsonl --n 8 --max-new-tokens 256

On N repositories of a JSON Lines corpus (the collection schema; `repo` may be "owner/name"), the
embedded SmolLM2-135M writes a README three ways, scored against the real README (ROUGE-L/ROUGE-1 on
its first 4,000 characters, section coverage, grounding):
  naive        the instruction first, then the files; no forced prefix; plain greedy; raw output
  disciplined  `generate.py`'s prompt (files first, instruction last, forced `# <repo>`), greedy with
               repetition penalty and no-repeat n-grams, stop at <|im_end|>; raw decode
  +clean       the same generations after `clean_readme` (no extra generation)
~40 s per README per variant on 2 free CPU cores at 256 new tokens; the default N=8 stays near 10 min.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from moxi_pipeline.evaluate import coverage_share, grounding, rouge_scores, section_coverage
from moxi_pipeline.generate import DecodingConfig, build_prompt_ids, clean_readme, generate_ids, stop_token_ids
from moxi_pipeline.instructions import readme_instruction
from moxi_pipeline.prompts import render_input, response_prefix
from moxi_pipeline.records import KeyFile, SampleInput


def load_corpus(path: Path, n: int) -> list[dict]:
    """The first n records: name (the part after "owner/"), README, and the model's input."""
    rows = []
    for line in path.read_text().splitlines()[:n]:
        raw = json.loads(line)
        sample_input = SampleInput(
            file_tree=tuple(raw["file_tree"]),
            project_type=raw.get("project_type") or "unknown",
            key_files=tuple(KeyFile(**k) for k in raw.get("key_files", [])),
        )
        rows.append({"repo": raw["repo"].rsplit("/", 1)[-1], "readme": raw["readme"], "input": sample_input})
    return rows


def naive_prompt_ids(tokenizer, repo: str, sample_input: SampleInput) -> list[int]:
    """What one writes first: the request, then the files, in the model's own default chat setup."""
    user = readme_instruction(repo, sample_input.project_type) + "\n\n" + render_input(sample_input, repo)
    text = tokenizer.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False).input_ids


def score(prediction: str, row: dict) -> dict:
    return {
        **rouge_scores(prediction, row["readme"]),
        "coverage": coverage_share(section_coverage(prediction)),
        "grounding": grounding(prediction, row["input"].file_tree),
    }


def run(model, tokenizer, rows: list[dict], max_new_tokens: int) -> dict[str, list[dict]]:
    naive = DecodingConfig(max_new_tokens=max_new_tokens, repetition_penalty=1.0, no_repeat_ngram_size=0)
    disciplined = DecodingConfig(max_new_tokens=max_new_tokens)
    results: dict[str, list[dict]] = {"naive": [], "disciplined": [], "+clean": []}
    for row in rows:
        repo, sample_input = row["repo"], row["input"]
        started = time.perf_counter()
        [ids] = generate_ids(model, tokenizer, [naive_prompt_ids(tokenizer, repo, sample_input)], naive)
        naive_s = time.perf_counter() - started
        naive_text = tokenizer.decode(ids, skip_special_tokens=True)
        results["naive"].append({**score(naive_text, row), "s": naive_s, "repo": repo, "text": naive_text})
        started = time.perf_counter()
        [ids] = generate_ids(model, tokenizer, [build_prompt_ids(tokenizer, repo, sample_input)], disciplined)
        disciplined_s = time.perf_counter() - started
        raw = response_prefix(repo) + tokenizer.decode(ids, skip_special_tokens=True)
        cleaned = clean_readme(raw, repo)
        results["disciplined"].append({**score(raw, row), "s": disciplined_s, "repo": repo, "text": raw})
        results["+clean"].append({**score(cleaned, row), "s": disciplined_s, "repo": repo, "text": cleaned})
        print(f"{repo:<32} rougeL naive {results['naive'][-1]['rougeL']:.3f} "
              f"disciplined {results['disciplined'][-1]['rougeL']:.3f} +clean {results['+clean'][-1]['rougeL']:.3f} "
              f"({naive_s:.0f} s, {disciplined_s:.0f} s)", flush=True)
    return results


def mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def print_table(results: dict[str, list[dict]]) -> None:
    metrics = ("rougeL", "rouge1", "coverage", "grounding", "s")
    print("\n| variant | " + " | ".join(metrics) + " |")
    print("|---" * (len(metrics) + 1) + "|")
    for name, rows in results.items():
        cells = [mean(r[m] for r in rows) for m in metrics]
        print(f"| {name} | " + " | ".join("—" if c is None else f"{c:.3f}" for c in cells) + " |")
    naive, clean = mean(r["rougeL"] for r in results["naive"]), mean(r["rougeL"] for r in results["+clean"])
    print(f"\nROUGE-L ratio (+clean / naive): {clean / naive:.2f}x" if naive else "\nnaive ROUGE-L is 0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", nargs="?", default="../shared/corpus/dev.jsonl", type=Path)
    parser.add_argument("--n", type=int, default=8, help="repositories, the first N of the corpus")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--model-dir", type=Path, default=Path("data/benchmarks/base_model"),
                        help="where the embedded SmolLM2 is saved as safetensors (once, ~30 s)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, help="write every generation and its scores here (JSON Lines)")
    args = parser.parse_args()

    from moxi_pipeline.modeling import import_base_model, load_model, load_tokenizer

    import_base_model("embedded", args.model_dir)
    model, tokenizer = load_model(args.model_dir, args.device), load_tokenizer(args.model_dir)
    print(f"{args.n} repos from {args.corpus}, max_new_tokens={args.max_new_tokens}, stop at {stop_token_ids(tokenizer)}")
    results = run(model, tokenizer, load_corpus(args.corpus, args.n), args.max_new_tokens)
    print_table(results)
    if args.out:
        with args.out.open("w") as handle:
            for variant, rows in results.items():
                handle.writelines(json.dumps({"variant": variant, **row}) + "\n" for row in rows)


if __name__ == "__main__":
    main()
