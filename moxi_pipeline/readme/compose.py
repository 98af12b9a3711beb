"""Section-by-section README writing: facts first, the model writes prose around them.

For one repository: `repo_facts` -> `plan_outline` -> one short prompt per model-written section
(facts block, the key files that matter to it, the heading forced as the answer's start) -> all
sections of all repositories in a batch generated together (left padding, KV cache) -> each section
cut at the next heading and cleaned -> fact sections rendered -> the grounding pass over the whole.

A 135M model keeps a paragraph coherent; it does not keep 1,500 characters coherent, and it cannot be
trusted with an install command. Here it writes neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from moxi_pipeline.readme import markdown
from moxi_pipeline.readme.cleaning import clean_section
from moxi_pipeline.readme.decoding import DecodingConfig, generate_ids
from moxi_pipeline.readme.facts import repo_facts
from moxi_pipeline.readme.facts.manifests import parse_manifest
from moxi_pipeline.readme.evidence import Evidence
from moxi_pipeline.readme.grounding import GroundingReport, ground_readme
from moxi_pipeline.readme.mbr import consensus_index
from moxi_pipeline.readme.outline import about_opening, join_sections, plan_outline
from moxi_pipeline.readme.prompts import (
    MODEL_SECTIONS,
    build_messages,
    plain_messages,
    section_instruction,
    section_prefix,
)
from moxi_pipeline.records import RepoFacts, SampleInput

# ("<repo> <section>", done, total) after each generated section
SectionProgress = Callable[[str, int, int], None]
# new tokens per section: ~4 characters a token, so ~350 characters of About, ~500 of Features/Usage
SECTION_TOKENS = {"about": 96, "features": 128, "usage": 128}
KEY_FILES_PER_SECTION = 3


def section_budget(section: str, decoding: DecodingConfig) -> int:
    """New tokens a section may take: its SECTION_TOKENS, scaled, within max_new_tokens."""
    return max(1, min(round(SECTION_TOKENS[section] * decoding.section_tokens_scale), decoding.max_new_tokens))


def section_minimum(section: str, decoding: DecodingConfig) -> int:
    """New tokens a section takes before it may end: `min_section_share` of its budget."""
    return round(section_budget(section, decoding) * decoding.min_section_share)


@dataclass(frozen=True)
class Written:
    repo: str
    text: str  # the grounded README
    facts: RepoFacts
    grounding: GroundingReport
    new_tokens: int


def section_input(section: str, repo, facts: RepoFacts) -> SampleInput:
    """The key files that matter to a section: manifests first for About and Usage, code first for Features."""
    manifests = [k for k in repo.key_files if parse_manifest(k.path, k.content) is not None]
    code = [k for k in repo.key_files if k not in manifests]
    ordered = code + manifests if section == "features" else manifests + code
    return SampleInput(file_tree=tuple(repo.file_tree), project_type=repo.project_type,
                       key_files=tuple(ordered[:KEY_FILES_PER_SECTION]), facts=facts)


def section_messages(section: str, repo, facts: RepoFacts) -> list[dict]:
    return build_messages(section_instruction(section, facts.name), section_input(section, repo, facts), facts.name)


def section_prompt_ids(tokenizer, messages: list[dict], prefix: str) -> list[int]:
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False).input_ids + tokenizer(prefix, add_special_tokens=False).input_ids


@dataclass(frozen=True)
class SectionJob:
    repo: str
    repo_index: int
    section: str
    prefix: str
    prompt_ids: list[int]
    plain_ids: list[int]  # the same request without the repository's context (context-aware decoding)


def section_job(tokenizer, repo, index: int, facts: RepoFacts, section: str, prefix: str) -> SectionJob:
    """One section's job: its prompt, and the same request without the repository's context."""
    plain = plain_messages(section_instruction(section, facts.name), facts.name, repo.project_type)
    prompt = section_prompt_ids(tokenizer, section_messages(section, repo, facts), prefix)
    return SectionJob(repo.repo, index, section, prefix, prompt, section_prompt_ids(tokenizer, plain, prefix))


def section_jobs(tokenizer, repos, all_facts, with_features: bool) -> list[SectionJob]:
    jobs = []
    for index, (repo, facts) in enumerate(zip(repos, all_facts)):
        for plan in plan_outline(facts, with_features):
            if plan.writer == "facts":
                continue
            opening = about_opening(facts, repo.project_type) if plan.key == "about" else ""
            prefix = section_prefix(plan.key, facts, opening)
            jobs.append(section_job(tokenizer, repo, index, facts, plan.key, prefix))
    return jobs


def run_section_jobs(model, tokenizer, jobs: list[SectionJob], decoding: DecodingConfig, progress: SectionProgress | None):
    """{(repo_index, section): (text, new_tokens)}; jobs are sorted by budget, so a batch mixes budgets only
    where one ends: it runs to the larger, and each row is cut to its own (greedy: the same tokens as alone)."""
    out = {}
    ordered = sorted(jobs, key=lambda job: (section_budget(job.section, decoding), len(job.prompt_ids)))
    per_batch = max(1, decoding.batch_size // max(1, decoding.mbr_candidates))  # rows = prompts x drafts
    for start in range(0, len(ordered), per_batch):
        batch = ordered[start : start + per_batch]
        step = replace(decoding, max_new_tokens=max(section_budget(job.section, decoding) for job in batch))
        for job, drafts in zip(batch, _drafts(model, tokenizer, batch, step)):
            limit = section_budget(job.section, decoding)
            # layout before the grounding pass too, not only after it: code written left of a fence opened inside a
            # list item ends the item and the fence with it, and grounding would judge the code as prose
            texts = [markdown.layout(clean_section(job.prefix + tokenizer.decode(ids[:limit], skip_special_tokens=True),
                                                   job.prefix, cut_by_budget=len(ids[:limit]) >= limit)) for ids in drafts]
            best = consensus_index(texts)
            out[(job.repo_index, job.section)] = (texts[best], sum(len(ids[:limit]) for ids in drafts))
            if progress is not None:  # per section, as its batch finishes
                progress(f"{job.repo} {job.section}", len(out), len(ordered))
    return out


def _drafts(model, tokenizer, batch: list[SectionJob], decoding: DecodingConfig) -> list[list[list[int]]]:
    """Per job, its drafts' new ids: one decode, or `mbr_candidates` sampled drafts generated in one batch."""
    prompts = [job.prompt_ids for job in batch]
    plain = [job.plain_ids for job in batch]
    n = decoding.mbr_candidates
    minimum = [section_minimum(job.section, decoding) for job in batch]
    if n <= 1:
        return [[ids] for ids in generate_ids(model, tokenizer, prompts, decoding, minimum, plain)]
    sampling = replace(decoding, temperature=decoding.mbr_temperature, top_p=0.95)
    rows = generate_ids(model, tokenizer, [ids for ids in prompts for _ in range(n)], sampling,
                        [m for m in minimum for _ in range(n)], [ids for ids in plain for _ in range(n)])
    return [rows[i * n : (i + 1) * n] for i in range(len(batch))]


def assemble(repo, facts: RepoFacts, sections: dict[str, str], with_features: bool = True) -> str:
    """The README from the outline: model text where it wrote, facts where they are the section."""
    parts = []
    for plan in plan_outline(facts, with_features):
        written = sections.get(plan.key, "")
        if plan.key == "about" and written.strip() in ("", plan.heading):
            written = f"{plan.heading}\n\n{about_opening(facts, repo.project_type)}"
        if plan.writer == "facts":
            parts.append(f"{plan.heading}\n\n{plan.facts_text}")
        elif plan.writer == "both":
            body = written.split("\n", 1)[1].strip() if "\n" in written else ""
            if body or plan.facts_text:
                parts.append(f"{plan.heading}\n\n{body}\n\n{plan.facts_text}")
        elif written.strip() != plan.heading:
            parts.append(written)
    return join_sections(parts)


def write_readmes(
    model, tokenizer, repos: list, decoding: DecodingConfig, with_features: bool = True,
    progress: SectionProgress | None = None,
) -> list[Written]:
    """A grounded README per repository (RepoRecord or RepoSnapshot); model=None writes the template floor."""
    all_facts = [repo_facts(repo) for repo in repos]
    generated = {}
    if model is not None:
        generated = run_section_jobs(model, tokenizer, section_jobs(tokenizer, repos, all_facts, with_features), decoding, progress)
    written = []
    for index, (repo, facts) in enumerate(zip(repos, all_facts)):
        sections = {section: text for (i, section), (text, _) in generated.items() if i == index}
        use_features = with_features and model is not None
        draft = assemble(repo, facts, sections, use_features)
        text, report = ground_readme(draft, Evidence.of(facts, repo.file_tree, repo.key_files))
        text = markdown.layout(text)  # after grounding, which stays the last word on content: no word changes
        tokens = sum(n for (i, _), (_, n) in generated.items() if i == index)
        written.append(Written(repo.repo, text.rstrip() + "\n", facts, report, tokens))
    return written


__all__ = [
    "MODEL_SECTIONS",
    "SECTION_TOKENS",
    "Written",
    "assemble",
    "section_budget",
    "section_input",
    "section_messages",
    "write_readmes",
]
