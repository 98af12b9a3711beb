"""Completing a README the author already wrote: add only the sections it lacks, never touch its own text.

For one repository and its README: `repo_facts` -> `plan_outline` -> the sections the facts support that
no heading of the README names (`sections.section_kind`: "Getting started" is Installation) -> those
sections written as `write_readmes` writes them (facts rendered; Usage's prose by the model, section by
section, when there is a model) -> each new section grounded on its own, repeatedly until the pass removes
nothing, so none of it is text the grounding pass would take out -> inserted as whole blocks in outline
order: before the README's first section that comes later in the outline, else at the end.

The author's lines are never edited, moved or dropped: every one of them is in the output, in order,
byte for byte. A README with every supported section comes back unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from moxi_pipeline.readme import markdown
from moxi_pipeline.readme.compose import (
    SectionProgress,
    SectionJob,
    run_section_jobs,
    section_job,
)
from moxi_pipeline.readme.decoding import DecodingConfig
from moxi_pipeline.readme.facts import repo_facts
from moxi_pipeline.readme.evidence import Evidence, heading_anchors
from moxi_pipeline.readme.grounding import GroundingReport, ground_readme
from moxi_pipeline.readme.outline import SectionPlan, plan_outline
from moxi_pipeline.readme.prompts import section_prefix
from moxi_pipeline.readme.sections import section_kind
from moxi_pipeline.records import RepoFacts

# The sections completion may add, in outline order; About and Features are the author's to write.
COMPLETABLE = ("built_with", "installation", "usage", "contributing", "license")
# outline position of each kind a heading can name; "other" (Acknowledgements, FAQ) anchors nothing
_RANK = {"about": 0, "features": 1, "built_with": 2, "installation": 3, "usage": 4, "configuration": 4.5,
         "api": 4.5, "contributing": 5, "license": 6}
# section_kind has no Built With kind (it is "other" there): these headings name one
_BUILT_WITH = re.compile(r"built with|tech(nology|nologies)? stack|\btechnologies\b|powered by|made with|\bstack\b")
MAX_GROUNDING_ROUNDS = 4


@dataclass(frozen=True)
class Completed:
    repo: str
    text: str  # the author's README with the added sections
    added: dict[str, str] = field(default_factory=dict)  # section key -> the grounded block, in outline order
    facts: RepoFacts | None = None
    grounding: GroundingReport = field(default_factory=GroundingReport)  # what the pass removed from added text
    new_tokens: int = 0

    @property
    def unchanged(self) -> bool:
        return not self.added


def heading_kind(title: str) -> str:
    """The outline key a heading names: section_kind's, with Built With recognised."""
    return "built_with" if _BUILT_WITH.search(title.lower()) else section_kind(title)


def present_sections(readme: str) -> set[str]:
    """The completable sections a README already has, under a heading of any level."""
    return {kind for heading in markdown.headings(readme) if (kind := heading_kind(heading.title)) in COMPLETABLE}


def missing_plans(facts: RepoFacts, readme: str) -> list[SectionPlan]:
    """The outline's completable sections the facts support and the README lacks, in outline order."""
    present = present_sections(readme)
    return [plan for plan in plan_outline(facts, with_features=False) if plan.key in COMPLETABLE and plan.key not in present]


def _usage_jobs(tokenizer, repos, all_facts, wanted) -> list[SectionJob]:
    jobs = []
    for index, (repo, facts) in enumerate(zip(repos, all_facts)):
        if any(plan.key == "usage" for plan in wanted[index]):
            prefix = section_prefix("usage", facts, "")
            jobs.append(section_job(tokenizer, repo, index, facts, "usage", prefix))
    return jobs


def _draft_block(plan: SectionPlan, written: str) -> str:
    """A section as `compose.assemble` renders it: facts, or the model's prose then the facts."""
    if plan.writer == "facts":
        return f"{plan.heading}\n\n{plan.facts_text}"
    body = written.split("\n", 1)[1].strip() if "\n" in written else ""
    return "\n\n".join(part for part in (plan.heading, body, plan.facts_text) if part)


def ground_block(block: str, evidence: Evidence, report: GroundingReport, anchors: set[str] | None = None) -> str:
    """The block grounded until a pass removes nothing; "" when nothing but the heading would be left."""
    for _ in range(MAX_GROUNDING_ROUNDS):
        before = report.total()
        block, _ = _ground_into(block, evidence, report, anchors)
        if report.total() == before:
            break
    else:
        return ""
    block = markdown.layout(block.strip()).strip()  # whitespace and list numbers only: no word changes
    return block if "\n" in block and block.split("\n", 1)[1].strip() else ""


def _ground_into(text: str, evidence: Evidence, report: GroundingReport, anchors: set[str] | None = None) -> tuple[str, GroundingReport]:
    grounded, one = ground_readme(text, evidence, anchors=anchors)
    report.add(one)
    return grounded, one


def _headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """(first line, level, title) of the README's top-level headings; a leading H1 (the title) is left out."""
    found = [(block.start, _block_level(block, lines), block.title) for block in markdown.blocks(lines) if block.kind == "heading"]
    return found[1:] if found and found[0][1] == 1 else found


def _block_level(block: markdown.Block, lines: list[str]) -> int:
    first = lines[block.start].lstrip()
    if first.startswith("#"):
        return len(first) - len(first.lstrip("#"))
    if first.lower().startswith("<h") and first[2:3].isdigit():
        return int(first[2])
    return 1 if block.end - block.start > 1 and lines[block.end - 1].strip().startswith("=") else 2  # setext


def insert_sections(readme: str, blocks: dict[str, str]) -> str:
    """The README with each block (key -> Markdown opening "## Heading") inserted before the first
    section heading that comes later in the outline, else appended; at the README's section level.
    Only lines are added: the author's text is a subsequence of the result, byte for byte."""
    if not blocks:
        return readme
    lines = readme.split("\n")
    headings = _headings(lines)
    level = min((lvl for _, lvl, _ in headings), default=2)
    anchors = [(start, _RANK.get(heading_kind(title))) for start, lvl, title in headings if lvl == level]
    inserts: dict[int | None, list[str]] = {}
    for key, block in blocks.items():
        heading, _, body = block.partition("\n")
        block = "#" * level + " " + heading.lstrip("#").strip() + "\n" + body
        at = next((start for start, rank in anchors if rank is not None and rank > _RANK[key]), None)
        inserts.setdefault(at, []).append(block)
    out: list[str] = []
    for index, line in enumerate(lines):
        if index in inserts:
            if out and out[-1].strip():
                out.append("")
            out += "\n\n".join(inserts[index]).split("\n") + [""]
        out.append(line)
    text = "\n".join(out)
    if None in inserts:
        separator = "" if text.endswith("\n\n") else "\n" if text.endswith("\n") else "\n\n"
        text += separator + "\n\n".join(inserts[None]) + "\n"
    return text


def complete_readmes(
    model, tokenizer, repos: list, readmes: list[str], decoding: DecodingConfig,
    progress: SectionProgress | None = None,
) -> list[Completed]:
    """Each README with the sections it lacks added; model=None writes only the facts' sections."""
    if len(repos) != len(readmes):
        raise ValueError(f"complete_readmes: {len(repos)} repositories but {len(readmes)} READMEs")
    for repo, readme in zip(repos, readmes):
        if not readme.strip():
            raise ValueError(f"{repo.repo}: the README is empty, there is nothing to complete (use generate without --complete)")
    all_facts = [repo_facts(repo) for repo in repos]
    wanted = [missing_plans(facts, readme) for facts, readme in zip(all_facts, readmes)]
    generated = {}
    if model is not None:
        generated = run_section_jobs(model, tokenizer, _usage_jobs(tokenizer, repos, all_facts, wanted), decoding, progress)
    completed = []
    for index, (repo, facts, readme) in enumerate(zip(repos, all_facts, readmes)):
        evidence, report = Evidence.of(facts, repo.file_tree, repo.key_files), GroundingReport()
        added = {}
        drafts = {plan.key: _draft_block(plan, generated.get((index, plan.key), ("", 0))[0]) for plan in wanted[index]}
        # an added section may link to a heading anywhere in the finished README, the author's or another added one
        anchors = heading_anchors("\n\n".join([readme, *drafts.values()]))
        for plan in wanted[index]:
            block = ground_block(drafts[plan.key], evidence, report, anchors)
            if block:
                added[plan.key] = block
        tokens = sum(n for (i, _), (_, n) in generated.items() if i == index)
        completed.append(Completed(repo.repo, insert_sections(readme, added), added, facts, report, tokens))
    return completed


def complete_readme(model, tokenizer, repo, readme: str, decoding: DecodingConfig | None = None,
                    progress: SectionProgress | None = None) -> Completed:
    return complete_readmes(model, tokenizer, [repo], [readme], decoding or DecodingConfig(), progress)[0]


__all__ = ["COMPLETABLE", "Completed", "complete_readme", "complete_readmes", "ground_block", "heading_kind",
           "insert_sections", "missing_plans", "present_sections"]
