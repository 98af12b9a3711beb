"""Chosen answers from an OpenAI-compatible model (MOXI_PREFERENCES=openai) instead of the real README section.

Each train prompt's chat messages (the ones its SFT sample is built from, `to_prompt_completion`) go to the
model as they are; its reply becomes the chosen answer once it passes the SFT answer's own rules: the section
body (no heading of its own, no HTML or badges, up to the next heading), grounded against the prompt's tree,
key files and facts, behind the same forced heading. Requests go through the instruction backend's
`answer_chats`: its cache (a re-run pays for nothing twice), budget, retries and resume, in `store_dir`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from moxi_pipeline.dataset.instructions_openai import (
    InstructionsResult,
    OpenAIInstructionsConfig,
    answer_chats,
)

# the SFT answer's own body rule (private there; imported rather than copied, so both answers follow one rule)
from moxi_pipeline.dataset.samples import section_body
from moxi_pipeline.readme.evidence import Evidence
from moxi_pipeline.readme.grounding import ground_readme
from moxi_pipeline.readme.prompts import section_prefix, to_prompt_completion
from moxi_pipeline.records import RepoFacts, SftSample
from moxi_pipeline.training.preferences import prompt_key

NOTHING_GROUNDED = "nothing left once grounded"


def grounded_answer(sample: SftSample, reply: str) -> str:
    """The reply as an SFT answer to `sample`'s prompt: forced heading + grounded body; "" when nothing is left."""
    facts = sample.input.facts or RepoFacts(name=sample.repo)
    body, _ = ground_readme(section_body(reply), Evidence.of(facts, sample.input.file_tree, sample.input.key_files))
    return section_prefix(sample.section, facts) + body.strip() if body.strip() else ""


def openai_chosen(client, samples: list[SftSample], config: OpenAIInstructionsConfig, store_dir: str | Path,
                  log: Callable[[str], None] | None = None) -> tuple[dict[str, str], dict[str, str], InstructionsResult]:
    """(prompt key -> grounded chosen answer, prompt key -> why it has none, the backend's usage) for `samples`."""
    chats = {prompt_key(sample): to_prompt_completion(sample)["prompt"] for sample in samples}
    result = answer_chats(client, chats, config, Path(store_dir), log)
    chosen, missing = {}, dict(result.failures)
    for sample in samples:
        key = prompt_key(sample)
        if key in result.instructions:
            answer = grounded_answer(sample, result.instructions[key])
            if answer:
                chosen[key] = answer
            else:
                missing[key] = NOTHING_GROUNDED
    return chosen, missing, result
