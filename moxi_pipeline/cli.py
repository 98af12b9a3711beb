"""The `moxi` command: write a README for a repository with the latest adapter, or show the last eval."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from moxi_pipeline.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="moxi", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="write a README for a local repository")
    gen.add_argument("path", help="a repository folder")
    gen.add_argument("--adapter", default="latest", help="'latest', an adapter folder, or 'none' for the base model")
    gen.add_argument("--out", help="write here instead of printing")
    gen.add_argument("--max-new-tokens", type=int, default=512, help="README length budget in tokens")
    gen.add_argument("--device", default="auto", help="auto | cpu | cuda")
    commands.add_parser("report", help="print where the last eval report is and its headline numbers")
    args = parser.parse_args(argv)
    try:
        return generate(args) if args.command == "generate" else report()
    except (ValueError, FileNotFoundError) as error:
        print(f"moxi: {error}", file=sys.stderr)
        return 2


def generate(args) -> int:
    from tqdm import tqdm

    from moxi_pipeline.collect.local import scan_repository
    from moxi_pipeline.generate import DecodingConfig, base_model_of, generate_readme, resolve_adapter
    from moxi_pipeline.modeling import load_model, load_tokenizer

    settings = load_settings()
    with tqdm(total=3, desc="moxi generate", unit="step", file=sys.stderr) as bar:
        bar.set_postfix_str("reading repository")
        snapshot = scan_repository(args.path)
        repo, sample_input = snapshot.repo, snapshot.sample_input()
        bar.update()
        adapter_dir = None if args.adapter == "none" else resolve_adapter(args.adapter, settings.adapters_dir)
        base_dir = base_model_of(adapter_dir) if adapter_dir else settings.models_dir / "base_model"
        bar.set_postfix_str(f"loading {adapter_dir or base_dir}")
        model, tokenizer = load_model(base_dir, args.device, adapter_dir), load_tokenizer(adapter_dir or base_dir)
        bar.update()
        bar.set_postfix_str("writing README")
        readme = generate_readme(model, tokenizer, repo, sample_input, DecodingConfig(max_new_tokens=args.max_new_tokens))
        bar.update()
    if args.out:
        Path(args.out).write_text(readme, encoding="utf-8")
        print(f"wrote {args.out} ({len(readme)} characters)", file=sys.stderr)
    else:
        print(readme)
    return 0


def report() -> int:
    settings = load_settings()
    pointer = settings.data_dir / "artifacts" / "eval_report.json"
    if not pointer.is_file():
        raise FileNotFoundError(f"no eval report at {pointer}: run `make demo` or materialize eval_report")
    artifact = json.loads(pointer.read_text())
    print(f"eval report: {Path(artifact['path']) / 'eval_report.md'}")
    metrics = artifact["metadata"]
    names = sorted({key.split("_", 1)[1] for key in metrics if key.startswith("base_")})
    print(f"{'metric':<16}{'base':>10}{'fine-tuned':>12}")
    for name in names:
        base, tuned = metrics.get(f"base_{name}"), metrics.get(f"fine_tuned_{name}")
        print(f"{name:<16}{_fmt(base):>10}{_fmt(tuned):>12}")
    return 0


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    sys.exit(main())
