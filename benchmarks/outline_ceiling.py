"""The outline's ceiling: what ROUGE-L a README would score if every model-written section were the real README's
own text, cut to the section budgets generation has.

    .venv/bin/python benchmarks/outline_ceiling.py --records path/to/dev.jsonl [--scales 1 2]

Each repository's README goes through the same path as a generated one: the facts' outline (title, install,
contributing, license from the facts), the grounding pass and the layout; only the About, Features and Usage text
comes from the real README (its preamble, its first section whose heading says "feature", its first usage section),
cut at a line boundary to the section's token budget (`compose.SECTION_TOKENS`, about 4 characters a token) times
each scale. The real text is also the reference, so this is an upper bound for any model at those budgets, and it
prices the prose metrics: the supported-prose share of a human author's own sentences. Prints a table, then the
ceiling at the first scale as its last line.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from moxi_pipeline.collect.jsonl import read_items, record_from_item
from moxi_pipeline.dataset.chunk import split_sections
from moxi_pipeline.evaluation.evaluate import mean_ci
from moxi_pipeline.evaluation.metrics import score_readme
from moxi_pipeline.readme import markdown
from moxi_pipeline.readme.compose import SECTION_TOKENS, assemble
from moxi_pipeline.readme.evidence import Evidence
from moxi_pipeline.readme.facts import repo_facts
from moxi_pipeline.readme.grounding import ground_readme
from moxi_pipeline.readme.outline import about_opening
from moxi_pipeline.readme.prompts import section_prefix
from moxi_pipeline.readme.sections import section_kind

CHARS_PER_TOKEN = 4
METRICS = ("rougeL", "length_ratio", "coverage", "supported_prose", "lint_findings")


def cut(body: str, chars: float) -> str:
    """The body's first lines that fit in `chars`."""
    kept, size = [], 0
    for line in body.split("\n"):
        size += len(line) + 1
        if size > chars:
            break
        kept.append(line)
    return "\n".join(kept).strip()


def real_sections(readme: str) -> dict[str, str]:
    """The real README's About (its preamble), Features and Usage bodies, where it has them."""
    sections = split_sections(readme)
    picks = {
        "about": sections[0] if sections else None,
        "features": next((s for s in sections if re.search(r"feature", s.title, re.IGNORECASE)), None),
        "usage": next((s for s in sections if s.title.strip() and section_kind(s.title) == "usage"), None),
    }
    return {key: _body(section) for key, section in picks.items() if section is not None}


def _body(section) -> str:
    """A section's text under its heading line (and a setext heading's underline); the preamble has none."""
    lines = section.text.split("\n")
    if section.title.strip():
        lines = lines[1:]
        if lines and re.fullmatch(r"\s*[=-]+\s*", lines[0]):
            lines = lines[1:]
    return "\n".join(lines)


def ceiling_readme(record, scale: float) -> dict:
    facts = repo_facts(record)
    evidence = Evidence.of(facts, record.file_tree, record.key_files)
    written = {}
    for key, body in real_sections(record.readme).items():
        opening = about_opening(facts, record.project_type) if key == "about" else ""
        written[key] = section_prefix(key, facts, opening) + cut(body, SECTION_TOKENS[key] * CHARS_PER_TOKEN * scale)
    text, _ = ground_readme(assemble(record, facts, written, with_features=True), evidence)
    text = markdown.layout(text).rstrip() + "\n"
    return score_readme(text, record.readme, facts, evidence, record.repo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=Path, required=True, help="a collection JSONL of repositories with READMEs")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 2.0], help="section budget multipliers")
    args = parser.parse_args()
    records = [record for record in (record_from_item(label, item) for label, item in read_items(args.records))
               if getattr(record, "readme", "")]
    if not records:
        raise SystemExit(f"--records {args.records}: no repository with a README")
    print(f"{len(records)} repositories\n")
    print("| section budgets | ROUGE-L [95% CI] | length ratio | section coverage | supported prose | lint / README |")
    print("|---|---|---|---|---|---|")
    first = None
    for scale in args.scales:
        rows = [ceiling_readme(record, scale) for record in records]
        means = {name: [row[name] for row in rows if row.get(name) is not None] for name in METRICS}
        rouge, (low, high) = mean_ci(means["rougeL"])
        first = first or (scale, rouge, low, high)
        cells = [f"{sum(v) / len(v):.2f}" if v else "-" for v in (means[name] for name in METRICS[1:])]
        print(f"| x{scale:g} | {rouge:.3f} [{low:.3f}, {high:.3f}] | " + " | ".join(cells) + " |")
    scale, rouge, low, high = first
    print(f"\nThe real README's own sections at x{scale:g} the section budgets: "
          f"ROUGE-L {rouge:.3f} [{low:.3f}, {high:.3f}]")


if __name__ == "__main__":
    main()
