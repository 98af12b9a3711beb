"""The eval report on disk: eval_report.md (tables + plot), metrics.json, metrics.png, predictions.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

from moxi_pipeline.evaluate import REFERENCE_CHARS, SCORE_METRICS, EvalReport


def write_eval_report(report: EvalReport, out_dir) -> dict:
    """eval_report.md, metrics.json, metrics.png, predictions.jsonl in out_dir; returns their paths and
    the headline {metric: {base, fine_tuned, delta}} for the asset's metadata."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    headline = {
        metric: {
            "base": getattr(report.models["base"], metric),
            "fine_tuned": getattr(report.models["fine_tuned"], metric),
            "delta": report.delta(metric),
        }
        for metric in (*SCORE_METRICS, "eval_loss")
    }
    paths = {
        "report": out_dir / "eval_report.md",
        "metrics": out_dir / "metrics.json",
        "plot": out_dir / "metrics.png",
        "predictions": out_dir / "predictions.jsonl",
    }
    summary = report.model_dump(mode="json", exclude={"rows"})
    paths["metrics"].write_text(json.dumps({**summary, "headline": headline}, indent=2) + "\n")
    with paths["predictions"].open("w") as handle:
        for row in report.rows:
            handle.write(json.dumps(row.model_dump(mode="json")) + "\n")
    plot_metrics(report, paths["plot"])
    paths["report"].write_text(render_report(report, headline, paths["plot"].name))
    return {"paths": {key: str(path) for key, path in paths.items()}, "headline": headline, "n_repos": report.n_repos}


def plot_metrics(report: EvalReport, path: Path) -> None:
    """Grouped bars, base against fine-tuned: scores in [0, 1] on the left, eval loss on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), gridspec_kw={"width_ratios": [4, 1]})
    width = 0.38
    for offset, name in ((-width / 2, "base"), (width / 2, "fine_tuned")):
        values = [getattr(report.models[name], m) or 0.0 for m in SCORE_METRICS]
        left.bar([i + offset for i in range(len(SCORE_METRICS))], values, width, label=name)
        right.bar([offset], [report.models[name].eval_loss or 0.0], width, label=name)
    left.set_xticks(range(len(SCORE_METRICS)), SCORE_METRICS)
    left.set_ylim(0, 1)
    left.set_title(f"held-out repositories (n={report.n_repos}); higher is better")
    left.legend()
    right.set_xticks([0], ["eval_loss"])
    right.set_title("lower is better")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _fmt(value, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def render_report(report: EvalReport, headline: dict, plot_name: str) -> str:
    lines = [
        "# Moxi evaluation: base model against fine-tuned",
        "",
        f"{report.n_repos} held-out repositories (never trained on). Both models get the same prompt and "
        "decoding; the only difference is the LoRA adapter.",
        "",
        "| metric | base | fine-tuned | delta | real README |",
        "|---|---|---|---|---|",
    ]
    for metric, values in headline.items():
        reference = _fmt(report.reference.get(metric)) if metric in report.reference else "—"
        lines.append(
            f"| {metric} | {_fmt(values['base'])} | {_fmt(values['fine_tuned'])} | "
            f"{_fmt(values['delta'], signed=True)} | {reference} |"
        )
    lines += ["", f"![metrics]({plot_name})", "", "## Per repository", ""]
    lines += ["| repo | model | rougeL | rouge1 | sections | grounding |", "|---|---|---|---|---|---|"]
    for row in report.rows:
        sections = ", ".join(name for name, ok in row.coverage.items() if ok) or "none"
        lines.append(
            f"| {row.repo} | {row.model} | {_fmt(row.rougeL)} | {_fmt(row.rouge1)} | {sections} | {_fmt(row.grounding)} |"
        )
    decoding = report.config["decoding"]
    lines += [
        "",
        "## How it was run",
        "",
        f"- base model: `{report.base_model_dir}`; adapter: `{report.adapter_dir}`",
        f"- decoding: greedy={decoding['temperature'] == 0}, max_new_tokens={decoding['max_new_tokens']}, "
        f"repetition_penalty={decoding['repetition_penalty']}, no_repeat_ngram_size={decoding['no_repeat_ngram_size']}; "
        "the answer is forced to open with `# <repo>`",
        f"- generation time: base {report.models['base'].generation_s:.0f} s, "
        f"fine-tuned {report.models['fine_tuned'].generation_s:.0f} s (device {report.config['device']})",
        f"- ROUGE (rouge-score, stemmed, F1) against the real README's first {REFERENCE_CHARS} characters",
        "- coverage: share of title, installation, usage, license, contributing with a heading",
        "- grounding: share of mentioned file paths that exist in the repository's tree (— when none is mentioned)",
        f"- eval loss: completion tokens of {report.n_loss_samples} test samples, max_length {report.config['max_length']}",
        "",
    ]
    return "\n".join(lines)
