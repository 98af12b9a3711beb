"""Tokens/s of `moxi generate`'s writing path for each form of one trained model, and the size of each form.

    .venv/bin/python benchmarks/export_speed.py --adapter data/models/lora_adapter/<run> --export out/
        [--base DIR] [--repos 4] [--new-tokens 64] [--device cpu]

`--export` is a `moxi export` output folder (`merged/`, `gguf/*.gguf`). Forms measured, each writing the same
READMEs (`readme.compose.write_readmes`, greedy, the installed packages' records, offline):
- `base+adapter`: the base model with the adapter merged in memory (what `moxi generate --adapter` runs);
- `merged`: the merged safetensors folder (`moxi generate --model out/merged`);
- `gguf <type>`: each GGUF file, loaded through transformers (`gguf_file=`, `models.writer.load_writer`): this
  measures transformers' GGUF path, not llama.cpp's (benchmarks/llama_cpp_check.sh runs llama.cpp itself).
Prints a table, then one line per form: `export_speed: <form> tok_s=<x> size_mb=<y>`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from moxi_pipeline.collect import collect_repos
from moxi_pipeline.models.writer import WriterSpec, base_model_of, load_writer
from moxi_pipeline.readme.compose import write_readmes
from moxi_pipeline.readme.decoding import DecodingConfig


def forms(adapter_dir: Path, export_dir: Path, base_dir: Path) -> list[tuple[str, WriterSpec, int]]:
    """(name, writer, size in bytes) for each form found; a missing merged folder is an error naming it."""
    merged = export_dir / "merged"
    if not (merged / "config.json").is_file():
        raise SystemExit(f"--export {export_dir}: no merged model in {merged} (run `moxi export` first)")
    adapter_bytes = sum(p.stat().st_size for p in adapter_dir.glob("*.safetensors"))
    base_bytes = sum(p.stat().st_size for p in base_dir.glob("*.safetensors"))
    found = [("base+adapter", WriterSpec(base_dir, adapter_dir), base_bytes + adapter_bytes),
             ("merged", WriterSpec(merged), sum(p.stat().st_size for p in merged.glob("*.safetensors")))]
    for path in sorted((export_dir / "gguf").glob("*.gguf")):
        found.append((f"gguf {path.stem.rsplit('-', 1)[-1]}", WriterSpec(path.parent, gguf_file=path.name),
                      path.stat().st_size))
    return found


def measure(spec: WriterSpec, records, decoding: DecodingConfig, device: str) -> tuple[float, int, float]:
    """(load seconds, new tokens, tokens per second) writing READMEs for `records`."""
    started = time.perf_counter()
    model, tokenizer = load_writer(spec, device)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    written = write_readmes(model, tokenizer, records, decoding)
    seconds = time.perf_counter() - started
    tokens = sum(w.new_tokens for w in written)
    return load_s, tokens, tokens / seconds if seconds > 0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", required=True, type=Path, help="the trained LoRA adapter folder")
    parser.add_argument("--export", required=True, type=Path, help="`moxi export` output: merged/ and gguf/")
    parser.add_argument("--base", type=Path, help="the base model folder (default: the one the adapter names)")
    parser.add_argument("--repos", type=int, default=4, help="installed packages to write READMEs for")
    parser.add_argument("--new-tokens", type=int, default=64, help="token budget per section")
    parser.add_argument("--device", default="cpu", help="auto | cpu | cuda")
    args = parser.parse_args()
    import transformers  # noqa: F401  imported before timing, so the first form's load time is its own
    base_dir = args.base or base_model_of(args.adapter)
    records = collect_repos("installed", limit=args.repos).records
    if not records:
        raise SystemExit("no installed-package records to write READMEs for")
    decoding = DecodingConfig(max_new_tokens=args.new_tokens)
    rows = []
    for name, spec, size in forms(args.adapter, args.export, base_dir):
        load_s, tokens, tok_s = measure(spec, records, decoding, args.device)
        rows.append((name, size / 2**20, load_s, tokens, tok_s))
    print(f"{len(records)} READMEs, {args.new_tokens} tokens per section at most, device {args.device}\n")
    print("| form | size MB | load s | new tokens | tokens/s |\n|---|---|---|---|---|")
    for name, size_mb, load_s, tokens, tok_s in rows:
        print(f"| {name} | {size_mb:.2f} | {load_s:.1f} | {tokens} | {tok_s:.1f} |")
    print()
    for name, size_mb, _, _, tok_s in rows:
        print(f"export_speed: {name.replace(' ', '_')} tok_s={tok_s:.1f} size_mb={size_mb:.2f}")


if __name__ == "__main__":
    main()
