"""docs/examples.md from a `moxi evaluate` run: three generated READMEs beside links to the real ones.

    .venv/bin/python benchmarks/examples_page.py RUN_DIR [--system fine_tuned] [--base-run DIR] [--out docs/examples.md]

The three repositories are chosen by rule, not by eye: those at the 25th, 50th and 75th percentile of the
system's ROUGE-L on the run, so the page shows a weak, a typical and a good README. The real READMEs are
linked, not copied (their text belongs to their authors). Each generated README is shown as raw Markdown
inside a fence, with its scores and, where the base model wrote the same repository (in RUN_DIR, or in the
`--base-run` of the same code when RUN_DIR scored the adapter alone), the base model's scores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

METRICS = ("rougeL", "length_ratio", "lint_findings", "supported_prose", "unknown_paths", "invented_urls")


def pick(rows: list[dict]) -> list[dict]:
    ranked = sorted(rows, key=lambda row: row["rougeL"])
    return [ranked[min(len(ranked) - 1, int(q * len(ranked)))] for q in (0.25, 0.5, 0.75)]


def scores(row: dict) -> str:
    cells = []
    for name in METRICS:
        value = row.get(name)
        cells.append(f"{name} {value:.3f}" if isinstance(value, float) else f"{name} {value}")
    return ", ".join(cells)


def fence(text: str) -> str:
    """A fence longer than any inside the README, so its own code blocks render as text."""
    longest = 2
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("```"):
            longest = max(longest, len(stripped) - len(stripped.lstrip("`")))
    ticks = "`" * (longest + 1)
    return f"{ticks}markdown\n{text.rstrip()}\n{ticks}"


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "generations.jsonl").read_text().splitlines() if line.strip()]


def page(run_dir: Path, system: str, base_run: Path | None = None) -> str:
    rows = _rows(run_dir)
    mine = [row for row in rows if row["system"] == system]
    if not mine:
        raise SystemExit(f"{run_dir}/generations.jsonl has no rows of system {system!r}")
    base = {row["repo_url"]: row for row in (_rows(base_run) if base_run else rows) if row["system"] == "base"}
    parts = [
        "# Three generated READMEs beside the real ones",
        "",
        f"_Made by `benchmarks/examples_page.py` from the `moxi evaluate` run `{run_dir.name}` ({system}"
        f"{f'; the base model from `{base_run.name}`' if base_run else ''}); "
        "the three repositories of `dev.jsonl` at the 25th, 50th and 75th percentile of its ROUGE-L, so a weak, "
        "a typical and a good README. Follow each link for the real README: it is not copied here._",
        "",
    ]
    for label, row in zip(("25th percentile", "median", "75th percentile"), pick(mine)):
        parts += [f"## {row['repo']} ({label})", "",
                  f"Real README: <{row['repo_url']}#readme>", "",
                  f"Scores: {scores(row)}."]
        if row["repo_url"] in base:
            parts.append(f"Base model on the same repository: {scores(base[row['repo_url']])}.")
        parts += ["", fence(row["text"]), ""]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--system", default="fine_tuned")
    parser.add_argument("--base-run", type=Path, default=None, help="the base model's rows from this run instead")
    parser.add_argument("--out", type=Path, default=Path("docs/examples.md"))
    args = parser.parse_args()
    args.out.write_text(page(args.run_dir, args.system, args.base_run))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
