"""An evaluation on disk: generations.jsonl, metrics.json, report.md and its plot; and the comparison of runs.

    DIR/generations.jsonl   one line per repository and system, with its README and metrics
    DIR/metrics.json        the run (what was evaluated) and each system's summary
    DIR/report.md           tables and the plot
    DIR/metrics.png         ROUGE and coverage with 95% CIs, and the trust rates, per system

`compare_runs` reads many such folders into one Markdown table and plot (seed 004's `compare`).
"""

from __future__ import annotations

import json
from pathlib import Path

from moxi_pipeline.evaluation.evaluate import SYSTEMS, EvalReport
from moxi_pipeline.evaluation.metrics import REFERENCE_CHARS

SCORE_BARS = ("rougeL", "rouge1", "rouge2", "coverage")
TRUST_BARS = ("hallucinated_path_rate", "invented_url_rate", "install_ok", "title_ok")
TABLE = ("rougeL", "rouge1", "rouge2", "rougeL_full", "rouge1_full", "rouge2_full", "coverage", "length_ratio", "hallucinated_path_rate",
         "invented_url_rate", "install_ok", "title_ok", "degenerate", "lint_findings", "broken_anchors", "supported_prose",
         "eval_loss", "perplexity", "tokens_per_s")


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def write_eval_report(report: EvalReport, out_dir) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / file for name, file in (("generations", "generations.jsonl"), ("metrics", "metrics.json"),
                                                     ("report", "report.md"), ("plot", "metrics.png"))}
    with paths["generations"].open("w", encoding="utf-8") as handle:
        for row in report.rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = report.model_dump(mode="json", exclude={"rows"})
    paths["metrics"].write_text(json.dumps(summary, indent=2) + "\n")
    plot_systems(report.systems, paths["plot"], f"n={report.n_repos} repositories")
    paths["report"].write_text(render_report(report, paths["plot"].name))
    return {name: str(path) for name, path in paths.items()}


def plot_systems(systems: dict[str, dict], path: Path, title: str) -> None:
    """Grouped bars per system: overlap scores with CI whiskers on the left, trust on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / max(1, len(systems))
    for offset, (name, summary) in enumerate(systems.items()):
        xs = [i + (offset - (len(systems) - 1) / 2) * width for i in range(len(SCORE_BARS))]
        values = [summary.get(m) or 0.0 for m in SCORE_BARS]
        errors = [[v - (summary.get(f"{m}_ci") or [v, v])[0] for v, m in zip(values, SCORE_BARS)],
                  [(summary.get(f"{m}_ci") or [v, v])[1] - v for v, m in zip(values, SCORE_BARS)]]
        left.bar(xs, values, width, yerr=errors, capsize=3, label=name)
        xs = [i + (offset - (len(systems) - 1) / 2) * width for i in range(len(TRUST_BARS))]
        right.bar(xs, [summary.get(m) or 0.0 for m in TRUST_BARS], width, label=name)
    left.set_xticks(range(len(SCORE_BARS)), SCORE_BARS)
    left.set_title(f"overlap with the real README ({title}); higher is better")
    right.set_xticks(range(len(TRUST_BARS)), ["unknown paths", "invented URLs", "install right", "title right"])
    right.set_ylim(0, 1.05)
    right.set_title("trust: first two lower is better, last two higher")
    left.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _system_table(systems: dict[str, dict]) -> list[str]:
    names = [name for name in SYSTEMS if name in systems]
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for metric in TABLE:
        cells = []
        for name in names:
            value, ci = systems[name].get(metric), systems[name].get(f"{metric}_ci")
            cells.append(_fmt(value) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return lines


def render_report(report: EvalReport, plot_name: str) -> str:
    lines = ["# Moxi evaluation", "",
             f"{report.n_repos} repositories; every system writes through the same outline, facts and grounding "
             "pass. Means with 95% confidence intervals over repositories; path and URL rates pooled.", ""]
    lines += _system_table(report.systems)
    if report.paired:
        lines += ["", "ROUGE-L, paired by repository:", "", "| systems | mean difference | 95% CI | higher on |",
                  "|---|---|---|---|"]
        lines += [f"| {pair} | {d['mean']:+.4f} | [{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}] | {d['wins']} of {d['n']} |"
                  for pair, d in report.paired.items()]
    lines += ["", f"![metrics]({plot_name})", "", "## Per repository", "",
              "| repo | system | rougeL | coverage | unknown paths | invented URLs | install | removed |",
              "|---|---|---|---|---|---|---|---|"]
    for row in report.rows:
        lines.append(f"| {row['repo']} | {row['system']} | {_fmt(row['rougeL'])} | {_fmt(row['coverage'])} | "
                     f"{row['unknown_paths']}/{row['paths']} | {row['invented_urls']}/{row['urls']} | "
                     f"{_fmt(row['install_ok'])} | {row['removed']} |")
    decoding = report.config["decoding"]
    lines += ["", "## How it was run", "",
              f"- base model `{report.base_model_dir}`; adapter `{report.adapter_dir}`"
              + (f"; DPO adapter `{report.dpo_adapter_dir}`" if report.dpo_adapter_dir else "")
              + f"; run {json.dumps(report.run)}",
              f"- decoding: greedy={decoding['temperature'] == 0}, batch {decoding['batch_size']}, "
              f"repetition_penalty={decoding['repetition_penalty']}, no_repeat_ngram_size={decoding['no_repeat_ngram_size']} "
              f"(both over the answer only), max_prompt_copy={decoding['max_prompt_copy']}",
              f"- ROUGE (rouge-score, stemmed, F1) against the real README's first {REFERENCE_CHARS} characters; "
              "`*_full` against all of it",
              "- coverage: share of the real README's installation/usage/license/contributing sections the output has",
              f"- eval loss: {report.config['n_loss_samples']} section samples, round-robin across repositories", ""]
    return "\n".join(lines)


def eval_table(report_md: str) -> str:
    """The systems table and the paired differences of a report.md, for a model card."""
    lines = report_md.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("| metric |")), None)
    if start is None:
        raise ValueError("report.md has no systems table (no line starting '| metric |')")
    end = next((i for i, line in enumerate(lines) if line.startswith("![metrics]")), len(lines))
    return "\n".join(lines[start:end]).strip() + "\n"


def load_runs(run_dirs) -> list[dict]:
    runs = []
    for run_dir in run_dirs:
        path = Path(run_dir) / "metrics.json"
        if not path.is_file():
            raise ValueError(f"{run_dir}: no metrics.json (not a `moxi evaluate` output folder)")
        runs.append({"dir": str(run_dir), **json.loads(path.read_text())})
    return runs


def compare_runs(run_dirs, out_dir) -> Path:
    """comparison.md and comparison.png over every system of every run, in out_dir."""
    runs = load_runs(run_dirs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = ("rougeL", "rouge1", "coverage", "hallucinated_path_rate", "invented_url_rate", "install_ok", "eval_loss")
    lines = ["# Moxi runs compared", "", "| run | system | adapter | data | profile | n | " + " | ".join(columns) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(columns)]
    bars = {}
    for run in runs:
        info = run.get("run", {})
        for system, summary in run["systems"].items():
            label = f"{Path(run['dir']).name}/{system}"
            bars[label] = summary
            adapter_dir = run.get({"fine_tuned": "adapter_dir", "dpo": "dpo_adapter_dir"}.get(system, ""))
            adapter = Path(adapter_dir).name if adapter_dir else "—"
            lines.append(f"| {Path(run['dir']).name} | {system} | {adapter} | {info.get('records', '—')} | "
                         f"{info.get('profile', '—')} | {run['n_repos']} | " +
                         " | ".join(_fmt(summary.get(c)) for c in columns) + " |")
    plot_systems(bars, out_dir / "comparison.png", f"{len(runs)} runs")
    lines += ["", "![comparison](comparison.png)", ""]
    path = out_dir / "comparison.md"
    path.write_text("\n".join(lines))
    return path
