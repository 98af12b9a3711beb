"""Per-README metrics: overlap with the real README, structure, and trust.

- ROUGE-1/2/L F1 (rouge-score, stemmed) against the real README's first `REFERENCE_CHARS` characters,
  and each of them against the whole README too (`*_full`);
- section coverage: of the section kinds the real README has (installation, usage, license,
  contributing), the share the output also has. The title is not scored: generation forces it;
- length ratio: output characters over the real README's (first REFERENCE_CHARS);
- trust: file paths mentioned that are not in the tree, URLs found nowhere in the repository,
  whether the install command matches the manifest, whether the title is the project's name,
  and degenerate output (a line repeated three times, a run of symbols).
"""

from __future__ import annotations

import re

from moxi_pipeline.readme import markdown
from moxi_pipeline.readme.grounding import Evidence, file_mentions
from moxi_pipeline.readme.sections import section_kind
from moxi_pipeline.records import RepoFacts

REFERENCE_CHARS = 4000
SCORED_SECTIONS = ("installation", "usage", "license", "contributing")
_INSTALL = re.compile(
    r"^\s*(?:\$\s*)?((?:pip3?|pipx|npm|yarn|pnpm|cargo|go|gem|composer|dotnet|dart|flutter|mvn|gradle|\./gradlew|bundle)"
    r"\s+(?:install|add|get|require|build|pub)\b[^\n`]*)", re.MULTILINE)
_SYMBOL_RUN = re.compile(r"([^\w\s])\1{19,}|^[^\w\s]{40,}$", re.MULTILINE)


def rouge_scores(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE-1/2/L F1 against the reference's first REFERENCE_CHARS characters, and `*_full` against all of it."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL", "rouge1", "rouge2"], use_stemmer=True)
    head = scorer.score(reference[:REFERENCE_CHARS], prediction)
    whole = scorer.score(reference, prediction) if len(reference) > REFERENCE_CHARS else head
    return {**{name: head[name].fmeasure for name in ("rougeL", "rouge1", "rouge2")},
            **{f"{name}_full": whole[name].fmeasure for name in ("rougeL", "rouge1", "rouge2")}}


def section_kinds(text: str) -> set[str]:
    return {kind for heading in markdown.headings(text) if (kind := section_kind(heading.title)) in SCORED_SECTIONS}


def section_coverage(prediction: str, reference: str) -> float | None:
    """Share of the reference's scored section kinds the prediction also has; None when it has none."""
    wanted = section_kinds(reference)
    return len(wanted & section_kinds(prediction)) / len(wanted) if wanted else None


def install_commands_in(text: str) -> list[str]:
    lines = [_LIST.sub("", line).strip().strip("`") for line in text.split("\n")]
    return [match.group(1).strip() for line in lines if (match := _INSTALL.match(line))]


_LIST = re.compile(r"^\s*([-*+]|\d+[.)])\s")


def install_ok(text: str, facts: RepoFacts, evidence: Evidence) -> bool | None:
    """None without a manifest-backed install command; else the README gives that command and none
    that contradicts the manifest."""
    expected = [c for c in facts.install if not c.startswith("docker ")]
    if not expected:
        return None
    found = install_commands_in(text)
    return any(c in expected for c in found) and all(evidence.command_allowed(c) for c in found)


def title_ok(text: str, facts: RepoFacts, repo: str) -> bool:
    heads = markdown.headings(text)
    if not heads or heads[0].level != 1:
        return False
    def norm(name: str) -> str:
        return re.sub(r"[\s_.-]+", "", name.lower())
    return norm(heads[0].title) in {norm(facts.name), norm(repo.split("/")[-1]), norm(facts.package or "")}


def degenerate(text: str) -> bool:
    """A line (4+ characters, not a fence) three times, or a run of 20 equal symbols / a 40-symbol line."""
    seen: dict[str, int] = {}
    for line in text.split("\n"):
        key = line.strip()
        if len(key) >= 4 and not key.startswith(("```", "~~~")):
            seen[key] = seen.get(key, 0) + 1
            if seen[key] >= 3:
                return True
    table_rules = re.sub(r"^\s*\|?[\s:|-]+\|?\s*$", "", text, flags=re.MULTILINE)
    return bool(_SYMBOL_RUN.search(table_rules))


def score_readme(prediction: str, reference: str, facts: RepoFacts, evidence: Evidence, repo: str) -> dict:
    """Every per-README metric; rates come with their counts so a mean over repositories can be pooled."""
    mentions = file_mentions(prediction)
    urls = markdown.urls(prediction)
    head = reference[:REFERENCE_CHARS]
    return {
        **rouge_scores(prediction, reference),
        "coverage": section_coverage(prediction, head),
        "length_ratio": len(prediction) / max(1, len(head)),
        "paths": len(mentions),
        "unknown_paths": sum(m not in evidence.known for m in mentions),
        "urls": len(urls),
        "invented_urls": sum(not evidence.url_allowed(u) for u in urls),
        "install_ok": install_ok(prediction, facts, evidence),
        "title_ok": title_ok(prediction, facts, repo),
        "degenerate": degenerate(prediction),
    }
