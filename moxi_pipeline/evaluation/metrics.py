"""Per-README metrics: overlap with the real README, structure, and trust.

- ROUGE-1/2/L F1 (rouge-score, stemmed) against the real README's first `REFERENCE_CHARS` characters,
  and each of them against the whole README too (`*_full`);
- section coverage: of the section kinds the real README has (installation, usage, license,
  contributing), the share the output also has. The title is not scored: generation forces it;
- length ratio: output characters over the real README's (first REFERENCE_CHARS);
- trust: file paths mentioned that are not in the tree, URLs found nowhere in the repository,
  whether the install command matches the manifest, whether the title is the project's name,
  and degenerate output (a line repeated three times, a run of symbols);
- what a reader sees: Markdown lint findings (`LINT_RULES` of pymarkdownlnt, unclosed fences, in-page
  links to no heading), and the share of model-written sentences the repository's own text supports.
"""

from __future__ import annotations

import re

from moxi_pipeline.readme import markdown
from moxi_pipeline.readme.evidence import Evidence, broken_anchors, file_mentions
from moxi_pipeline.readme.words import content_words, project_names
from moxi_pipeline.readme.outline import plan_outline
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


# pymarkdownlnt rules that change what a reader sees rendered: list numbering and indentation, heading structure,
# code fences. Style-only rules (line length, trailing spaces, bare URLs, emphasis style...) are not counted.
LINT_RULES = {
    "MD001": "heading levels go up one at a time",
    "MD005": "list items of one level share an indentation",
    "MD007": "nested bullet lists are indented by 2",
    "MD018": "a space after an ATX heading's #",  # `#Usage` renders as text, not a heading
    "MD025": "one top-level heading",
    "MD029": "ordered list numbers run 1, 2, 3",  # "1, 3" as in the issue
    "MD030": "one space after a list marker",
    "MD031": "blank lines around a fenced block",
    "MD032": "blank lines around a list",
    "MD042": "no empty links",
}


def unclosed_fences(text: str) -> int:
    """Fenced code blocks that run to the end of the text: the rest of the README renders as code."""
    lines = text.rstrip("\n").split("\n")
    count = 0
    for block in markdown.code_blocks(text):
        end = min(block.end, len(lines))
        closing = lines[end - 1].strip() if end - 1 > block.start else ""
        if block.fenced and lines[block.start].lstrip()[:1] in "`~" and not closing.startswith(("```", "~~~")):
            count += 1
    return count


def lint_findings(text: str) -> dict[str, int] | None:
    """Findings by rule: each LINT_RULES rule, `unclosed-fence`, and `broken-anchor` (in-page link to no heading);
    None when the linter itself fails on the text (pymarkdownlnt 0.9 raises BadPluginError on some list items),
    so one README the linter cannot read leaves the metric unknown, not the evaluation dead."""
    from pymarkdown.api import PyMarkdownApi, PyMarkdownApiException

    found = dict.fromkeys(LINT_RULES, 0)
    if not text.strip():  # pymarkdownlnt refuses an empty string; an empty README breaks no rule
        return {**found, "unclosed-fence": 0, "broken-anchor": 0}
    try:
        scanned = PyMarkdownApi().scan_string(text if text.endswith("\n") else text + "\n")
    except PyMarkdownApiException:
        return None
    for failure in scanned.scan_failures:
        if failure.rule_id in found:
            found[failure.rule_id] += 1
    return {**found, "unclosed-fence": unclosed_fences(text), "broken-anchor": len(broken_anchors(text))}


SUPPORTED_WORD_SHARE = 0.5  # a sentence is supported when at least half of its content words are in the repository


def model_sentences(prediction: str, facts: RepoFacts) -> list[str]:
    """Prose sentences of the README outside headings, code and tables, minus those the facts rendered."""
    rendered = " ".join(" ".join(plan.facts_text.split()) for plan in plan_outline(facts, with_features=True))
    code_lines = {i for block in markdown.code_blocks(prediction) for i in range(block.start, block.end)}
    sentences = []
    for index, line in enumerate(prediction.split("\n")):
        line = line.strip()
        if index in code_lines or not line or line.startswith(("#", "|", ">", "<", "![")):
            continue
        line = re.sub(r"^([-*+]|\d+[.)])\s+", "", line)
        for sentence in re.split(r"(?<=[.!?])\s+", line):
            if sentence.strip() and " ".join(sentence.split()) not in rendered:
                sentences.append(sentence.strip())
    return sentences


def supported_prose_share(prediction: str, facts: RepoFacts, evidence: Evidence, repo: str) -> float | None:
    """Share of the model-written sentences with at least SUPPORTED_WORD_SHARE of their content words (not stop
    words, not the project's name) found in the repository's text: key files and file names (never its README).
    None when the README has no model-written sentence with a content word."""
    names = evidence.names | project_names(repo.split("/")[-1])
    judged, supported = 0, 0
    for sentence in model_sentences(prediction, facts):
        words = content_words(sentence, names)
        if not words:
            continue
        judged += 1
        found = sum(map(evidence.mentions, words))
        supported += found >= SUPPORTED_WORD_SHARE * len(words)
    return supported / judged if judged else None


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
        "lint_findings": None if (lint := lint_findings(prediction)) is None else sum(lint.values()),
        "broken_anchors": len(broken_anchors(prediction)),
        "supported_prose": supported_prose_share(prediction, facts, evidence, repo),
    }
