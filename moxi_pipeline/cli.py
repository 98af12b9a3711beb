"""The `moxi` command: write a README for a repository, evaluate a model on a records file, compare runs,
analyze one repository, load a records file into MongoDB."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from moxi_pipeline.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="moxi", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="write a README for a repository")
    gen.add_argument("path", help="a repository folder, or a GitHub URL (read through the API)")
    gen.add_argument("--adapter", default="latest", help="'latest', an adapter folder, s3://bucket/key, or 'none' for the base model")
    gen.add_argument("--model", help="a merged model folder or a .gguf file (from `moxi export`), instead of --adapter")
    gen.add_argument("--out", help="write here instead of printing")
    gen.add_argument("--device", default="auto", help="auto | cpu | cuda")
    gen.add_argument("--complete", action="store_true",
                     help="keep the repository's own README and add only the sections it lacks")
    _decoding_flags(gen)
    ev = commands.add_parser("evaluate", help="score READMEs written for a records file against the real ones")
    ev.add_argument("--records", required=True, help="a .jsonl/.json file in the collection schema")
    ev.add_argument("--adapter", default="latest", help="'latest', an adapter folder, s3://bucket/key, or 'none'")
    ev.add_argument("--model", help="a merged model folder or a .gguf file (from `moxi export`), instead of --adapter")
    ev.add_argument("--dpo-adapter", metavar="DIR", help="also score this DPO adapter (the --adapter continued with DPO)")
    ev.add_argument("--baseline", action="store_true", help="also score the template floor and the base model")
    ev.add_argument("--limit", type=int, default=None, help="evaluate on at most N repositories")
    ev.add_argument("--out", required=True, help="output folder: generations.jsonl, metrics.json, report.md")
    ev.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ev.add_argument("--complete", action="store_true",
                    help="completion mode: remove one section from each real README and score how Moxi restores it")
    _decoding_flags(ev)
    cmp = commands.add_parser("compare", help="one table and plot of every evaluated run")
    cmp.add_argument("runs", nargs="*", help="`moxi evaluate` output folders (default: every run under data/eval/runs)")
    cmp.add_argument("--out", default=None, help="where comparison.md goes (default: data/eval)")
    commands.add_parser("report", help="print where the last eval report is and its headline numbers")
    an = commands.add_parser("analyze", help="print one repository's record: tree, key files, project type")
    an.add_argument("path", help="a repository folder, or a GitHub URL (read through the API)")
    mig = commands.add_parser("migrate", help="load a JSON/JSON Lines collection file into MongoDB (readme_samples)")
    mig.add_argument("file", help="a .json list or .jsonl file in the collection schema")
    exp = commands.add_parser("export", help="merge an adapter into its base model and write GGUF files")
    exp.add_argument("adapter", help="'latest', an adapter folder, or s3://bucket/key")
    exp.add_argument("--out", required=True, help="output folder: merged/ (safetensors) and gguf/")
    exp.add_argument("--gguf", default="f16,q8_0", help="comma-separated GGUF types: f16, bf16, q8_0, q4_0; 'none' to skip")
    srv = commands.add_parser("serve", help="a web page for writing or completing a README (the `web` extra)")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 opens the page to the network")
    srv.add_argument("--port", type=int, default=7860)
    srv.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = parser.parse_args(argv)
    handlers = {"serve": serve, "generate": generate, "evaluate": evaluate, "compare": compare, "report": lambda _: report(),
                "analyze": analyze, "migrate": migrate, "export": export}
    try:
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        print(f"moxi: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 -- the command's boundary: any other failure is one line naming the input, never a traceback
        subject = next((str(getattr(args, name)) for name in ("path", "file", "records", "adapter") if getattr(args, name, None)), "")
        print(f"moxi {args.command}: {subject + ': ' if subject else ''}failed with {type(error).__name__}: {error}",
              file=sys.stderr)
        return 1


def _is_remote(path: str) -> bool:
    return path.startswith(("http://", "https://", "git@", "github.com/")) and not Path(path).exists()


def _remote_repository(url: str, settings):
    """A GitHub repository through the API (GITHUB_TOKEN when set), README or not."""
    from moxi_pipeline.collect.github import GitHubClient
    from moxi_pipeline.collect.github_repos import analyze_github

    token = settings.github_token.get_secret_value() if settings.github_token else None
    client = GitHubClient(settings.github_api_url, token, timeout_s=settings.github_timeout_s,
                          max_retries=settings.github_max_retries)
    return analyze_github(client, url)


def analyze(args) -> int:
    """One repository as the collectors see it, as JSON: the README's name and size, not its text."""
    from moxi_pipeline.collect.key_files import read_text_head
    from moxi_pipeline.collect.local_repos import MAX_README_BYTES, scan_repository

    settings = load_settings()
    if _is_remote(args.path):
        repo = _remote_repository(args.path, settings)
        readme_path, readme_chars = repo.github.readme_path, len(repo.readme) if repo.readme else None
    else:
        repo = scan_repository(args.path)
        readme_path = repo.readme_path
        text = read_text_head(repo.root, readme_path, MAX_README_BYTES) if readme_path else None  # never through a link out
        readme_chars = len(text) if text is not None else None
    print(json.dumps({
        "repo_url": repo.repo_url, "owner": repo.owner, "repo": repo.repo, "language": repo.language,
        "license": repo.license, "project_type": repo.project_type, "readme_path": readme_path, "readme_chars": readme_chars,
        "file_tree": list(repo.file_tree), "key_files": [k.to_dict() for k in repo.key_files],
    }, indent=2, ensure_ascii=False))
    return 0


def migrate(args) -> int:
    """The seed's migrate_readme_to_mongo.py: records of a collection file upserted into readme_samples."""
    import uuid

    from moxi_pipeline.collect import collect_repos
    from moxi_pipeline.storage.mongo import MongoStore

    settings = load_settings()
    if settings.mongodb_uri is None:
        raise ValueError("MONGODB_URI is not set: there is no MongoDB to migrate into")
    collected = collect_repos("jsonl", args.file)
    for item in collected.skipped:
        print(f"skipped {item.item}: {item.reason}", file=sys.stderr)
    with MongoStore(settings.mongodb_uri.get_secret_value(), settings.mongodb_db_name) as store:
        summary = store.write_records("readme_samples", (r.to_dict() for r in collected.records),
                                      run_id=f"migrate-{uuid.uuid4().hex[:12]}")
    print(f"{settings.mongodb_db_name}.readme_samples: {summary.written} records ({summary.inserted} new, "
          f"{summary.replaced} replaced), {len(collected.skipped)} skipped")
    return 0


def _decoding_flags(parser) -> None:
    """`generate`'s and `evaluate`'s decoding flags (`_decoding` reads them)."""
    parser.add_argument("--mbr", type=int, default=0, metavar="N",
                        help="minimum-Bayes-risk decoding: sample N drafts per section, keep the consensus (0: greedy)")
    parser.add_argument("--length-scale", type=float, default=1.0, metavar="X",
                        help="each model-written section's token budget times X "
                             "(default 1: About 96, Features and Usage 128)")
    parser.add_argument("--min-section-share", type=float, default=0.0, metavar="S",
                        help="a model-written section may not end before this share (0-1) of its budget (default 0)")
    parser.add_argument("--context-contrast", type=float, default=0.0, metavar="A",
                        help="context-aware decoding: weigh the repository's context by A against the project's name "
                             "alone (0: off; about 2x the generation time)")


def _decoding(args):
    """`generate`/`evaluate`'s decoding settings: MBR drafts, the section length scale and minimum; a bad one is named."""
    from moxi_pipeline.readme.decoding import DecodingConfig

    if args.mbr < 0:
        raise ValueError(f"--mbr {args.mbr}: the number of drafts per section must be 0 (greedy) or more")
    if not args.length_scale > 0:
        raise ValueError(f"--length-scale {args.length_scale}: must be above 0 (1 keeps the default section budgets)")
    if not 0 <= args.min_section_share <= 1:
        raise ValueError(f"--min-section-share {args.min_section_share}: must be from 0 (the model ends a section "
                         "where it likes) to 1 (a section runs its whole budget)")
    if args.context_contrast < 0:
        raise ValueError(f"--context-contrast {args.context_contrast}: must be 0 (off) or more")
    return DecodingConfig(mbr_candidates=args.mbr, section_tokens_scale=args.length_scale,
                          min_section_share=args.min_section_share, context_contrast=args.context_contrast)


def _writer(adapter: str, settings, model: str | None = None):
    """The adapter ('latest', a folder, s3://, 'none') and its base model, resolved under the data folder;
    or `model` (a merged folder, a .gguf file) instead."""
    from moxi_pipeline.models.writer import resolve_writer

    return resolve_writer(adapter, settings.adapters_dir, settings.models_dir, settings.data_dir / "cache" / "s3",
                          endpoint_url=settings.aws_endpoint_url, model=model)


def export(args) -> int:
    """`moxi export`: the merged model and its GGUF files, each checked; ends with the one `export:` line."""
    from moxi_pipeline.export.run import export_adapter, export_line, parse_gguf_types
    from moxi_pipeline.models.writer import resolve_adapter

    settings = load_settings()
    adapter_dir = resolve_adapter(args.adapter, settings.adapters_dir, settings.data_dir / "cache" / "s3",
                                  settings.aws_endpoint_url)
    result = export_adapter(adapter_dir, args.out, parse_gguf_types(args.gguf))
    print(f"merged: {result.merged.out_dir} ({result.merged.size_bytes} bytes)", file=sys.stderr)
    for kind, path in (result.gguf.files.items() if result.gguf else ()):
        print(f"gguf {kind}: {path} ({result.gguf.size_bytes[kind]} bytes)", file=sys.stderr)
    print(export_line(result))
    return 0


def generate(args) -> int:
    from tqdm import tqdm

    from moxi_pipeline.collect.local_repos import scan_repository
    from moxi_pipeline.models.writer import load_writer
    from moxi_pipeline.readme.complete import complete_readme
    from moxi_pipeline.readme.compose import write_readmes

    settings = load_settings()
    decoding = _decoding(args)  # a bad option is named before anything loads
    snapshot = _remote_repository(args.path, settings) if _is_remote(args.path) else scan_repository(args.path)
    model, tokenizer = load_writer(_writer(args.adapter, settings, args.model), args.device)
    with tqdm(desc=f"moxi generate {snapshot.repo}", unit="section", file=sys.stderr) as bar:
        def step(what: str, done: int, total: int) -> None:
            bar.total = total
            bar.set_postfix_str(what)
            bar.update(done - bar.n)

        if args.complete:
            written = complete_readme(model, tokenizer, snapshot, _own_readme(snapshot), decoding, step)
            print(f"added {', '.join(written.added) or 'nothing: the README has every section the facts support'}",
                  file=sys.stderr)
        else:
            written = write_readmes(model, tokenizer, [snapshot], decoding, progress=step)[0]
    removed = written.grounding
    print(f"grounding removed {removed.paths} paths, {removed.urls} URLs, {removed.commands} commands, "
          f"{removed.items} invented list items", file=sys.stderr)
    if args.out:
        Path(args.out).write_text(written.text, encoding="utf-8")
        print(f"wrote {args.out} ({len(written.text)} characters)", file=sys.stderr)
    else:
        print(written.text)
    return 0


def _own_readme(repo) -> str:
    """The README a repository has (a GitHub repository's through the API, a folder's through the safe read)."""
    from moxi_pipeline.collect.key_files import read_text_head
    from moxi_pipeline.collect.local_repos import MAX_README_BYTES

    if hasattr(repo, "readme"):
        text = repo.readme
    else:
        text = read_text_head(repo.root, repo.readme_path, MAX_README_BYTES) if repo.readme_path else None
    if not text or not text.strip():
        raise ValueError(f"--complete: {repo.repo} has no README to complete (generate one without --complete)")
    return text


def evaluate(args) -> int:
    from tqdm import tqdm

    from moxi_pipeline.collect import collect_repos
    from moxi_pipeline.dataset.chunk import chunk_records
    from moxi_pipeline.dataset.samples import DatasetConfig, build_sft_dataset
    from moxi_pipeline.evaluation.evaluate import EvalConfig
    from moxi_pipeline.evaluation.evaluate import evaluate as run_evaluation
    from moxi_pipeline.evaluation.report import write_eval_report

    settings = load_settings()
    decoding = _decoding(args)  # a bad option is named before anything loads
    collected = collect_repos("jsonl", args.records, limit=args.limit)
    if not collected.records:
        reasons = "; ".join(f"{s.item}: {s.reason}" for s in collected.skipped[:3])
        raise ValueError(f"--records {args.records}: no usable record ({len(collected.skipped)} skipped: {reasons})")
    writer = _writer(args.adapter, settings, args.model)
    adapter_dir = writer.adapter_dir
    records = collected.records
    if args.complete:
        return _evaluate_completion(args, writer, records)
    try:
        samples = build_sft_dataset(records, chunk_records(records), DatasetConfig(test_fraction=0.5))
    except ValueError as error:  # no About/Features/Usage section to take a loss on; the READMEs are still scored
        print(f"moxi: no eval loss: {error}", file=sys.stderr)
        samples = []
    config = EvalConfig(max_repos=len(records), device=args.device, baseline=args.baseline or adapter_dir is None,
                        decoding=decoding)
    with tqdm(desc="moxi evaluate", unit="section", file=sys.stderr) as bar:
        def step(what: str, done: int, total: int) -> None:
            if done < bar.n:  # the next system starts over
                bar.reset(total)
            bar.total = total
            bar.set_postfix_str(what[:40])
            bar.update(done - bar.n)

        dpo_dir = Path(args.dpo_adapter) if args.dpo_adapter else None
        if dpo_dir is not None and not (dpo_dir / "adapter_config.json").is_file():
            raise ValueError(f"--dpo-adapter {dpo_dir}: not a PEFT adapter folder (no adapter_config.json)")
        result = run_evaluation(writer, records, samples, config, step, dpo_adapter_dir=dpo_dir)
    result = result.model_copy(update={"run": {"records": Path(args.records).name, "profile": _profile(adapter_dir)}})
    paths = write_eval_report(result, args.out)
    print(f"wrote {paths['report']}", file=sys.stderr)
    for system, summary in result.systems.items():
        print(f"{system:<12} rougeL {summary['rougeL']:.3f}  unknown paths {summary['hallucinated_path_rate']:.1%}  "
              f"invented URLs {summary['invented_urls']}  install right {_fmt(summary['install_ok'])}  "
              f"length ratio {_fmt(summary.get('length_ratio'))}  lint findings {_fmt(summary.get('lint_findings'))}  "
              f"broken anchors {_fmt(summary.get('broken_anchors'))}  supported prose {_fmt(summary.get('supported_prose'))}")
    for pair, diff in result.paired.items():
        print(f"{pair}: rougeL {diff['mean']:+.4f} [{diff['ci'][0]:+.4f}, {diff['ci'][1]:+.4f}], "
              f"higher on {diff['wins']} of {diff['n']} repositories")
    return 0


def _evaluate_completion(args, writer, records) -> int:
    from moxi_pipeline.evaluation.completion import (
        CompletionConfig,
        evaluate_completion,
        write_completion_report,
    )

    config = CompletionConfig(max_repos=len(records), device=args.device, baseline=args.baseline or writer.adapter_dir is None)
    result = evaluate_completion(writer, records, config)
    result["run"] = {"records": Path(args.records).name, "profile": _profile(writer.adapter_dir)}
    paths = write_completion_report(result, args.out)
    print(f"wrote {paths['report']}", file=sys.stderr)
    for system, summary in result["systems"].items():
        print(f"{system:<12} restored {summary['restored']:.0%}  rougeL {_fmt(summary['rougeL'])}  "
              f"unknown paths {summary['hallucinated_path_rate']:.1%}  author's lines kept {summary['kept_original']:.0%}")
    return 0


def _profile(adapter_dir) -> str:
    config = Path(adapter_dir or "") / "training_config.json"
    return json.loads(config.read_text()).get("config", {}).get("profile", "?") if adapter_dir and config.is_file() else "—"


def compare(args) -> int:
    from moxi_pipeline.evaluation.report import compare_runs

    settings = load_settings()
    runs = args.runs or sorted(str(p.parent) for p in (settings.data_dir / "eval" / "runs").glob("*/metrics.json"))
    if not runs:
        raise ValueError("no evaluated runs: pass `moxi evaluate` output folders, or materialize eval_report first")
    path = compare_runs(runs, args.out or settings.data_dir / "eval")
    print(path.read_text())
    return 0


def report() -> int:
    settings = load_settings()
    pointer = settings.data_dir / "artifacts" / "eval_report.json"
    if not pointer.is_file():
        raise FileNotFoundError(f"no eval report at {pointer}: run `make demo` or materialize eval_report")
    run_dir = settings.data_dir / json.loads(pointer.read_text())["path"]  # relative to the data folder
    summary = json.loads((run_dir / "metrics.json").read_text())
    print(f"eval report: {run_dir / 'report.md'}  ({summary['n_repos']} held-out repositories)")
    systems = list(summary["systems"])
    print(f"{'metric':<24}" + "".join(f"{name:>12}" for name in systems))
    for metric in ("rougeL", "rouge1", "coverage", "hallucinated_path_rate", "invented_url_rate", "install_ok", "eval_loss"):
        print(f"{metric:<24}" + "".join(f"{_fmt(summary['systems'][name].get(metric)):>12}" for name in systems))
    return 0


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def serve(args) -> int:
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        raise ValueError("moxi serve needs Gradio: pip install -e '.[web]'")
    from moxi_pipeline.web.app import serve as serve_page

    print(f"moxi serve: http://{args.host}:{args.port}", file=sys.stderr)
    serve_page(load_settings(), args.host, args.port, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
