"""What one instruction request says and what counts as an answer: the wire format of `instructions_openai`.

An item is one section sample as the instruction model sees it (`item_for`); `render_batch` turns a batch
of items into chat messages, `request_key` names a request for the cache, `parse_instructions` reads a
reply (the `json_schema` answer, or a tolerant reading of one a server wrapped or fenced), and
`check_instruction` says whether an instruction is usable for its item. No I/O here: the run that sends
requests, retries, caches and resumes is `instructions_openai.py`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from moxi_pipeline.readme.prompts import project_phrase, render_file_tree
from moxi_pipeline.records import SftSample

if TYPE_CHECKING:
    from moxi_pipeline.dataset.instructions_openai import OpenAIInstructionsConfig

PROMPT_VERSION = "v1"  # part of every item key: change it when the prompt's wording changes

SYSTEM = ("You write instructions for a dataset that teaches a small model to write README sections. "
          "Answer with JSON only.")
TASK = (
    "For each item below, write one instruction that a developer would give an assistant so that it writes "
    "exactly that README section for that repository. Name the project and the section, and say in one or "
    "two sentences what the section should cover. Do not copy sentences from the section text. "
    'Answer as {"instructions": [{"id": "<the item id>", "instruction": "<text>"}]}: one entry per item, '
    "with the item ids given."
)
SECTION_MEANING = {"about": "the opening: title and a summary of what it does",
                   "features": "a Features section", "usage": "a Usage section"}
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "instructions",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"instructions": {"type": "array", "items": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "instruction": {"type": "string"}},
                "required": ["id", "instruction"], "additionalProperties": False}}},
            "required": ["instructions"],
            "additionalProperties": False,
        },
    },
}


@dataclass(frozen=True)
class InstructionItem:
    key: str  # sha256 over the prompt version and everything the model sees of the item
    repo: str
    section: str
    project_type: str
    file_tree: tuple[str, ...]
    text: str  # the README section the instruction asks for

    @property
    def id(self) -> str:
        return self.key[:10]


def item_for(sample: SftSample) -> InstructionItem:
    fields = (PROMPT_VERSION, sample.repo_url, sample.repo, sample.section, sample.input.project_type,
              "\n".join(sample.input.file_tree), sample.content)
    key = hashlib.sha256("\x00".join(fields).encode()).hexdigest()
    return InstructionItem(key=key, repo=sample.repo, section=sample.section, project_type=sample.input.project_type,
                           file_tree=sample.input.file_tree, text=sample.content)


def render_batch(items: list[InstructionItem], config: OpenAIInstructionsConfig, rejected: str = "") -> list[dict]:
    """The chat messages for one request; `rejected` tells a retry why its last answer was refused."""
    blocks = []
    for item in items:
        blocks.append(
            f'Item id "{item.id}"\nRepository: {item.repo} ({project_phrase(item.project_type)})\n'
            f"Section: {item.section} ({SECTION_MEANING.get(item.section, item.section)})\n"
            f"File tree:\n{render_file_tree(item.file_tree)}\n"
            f"Section text:\n{item.text[:config.max_section_chars]}")
    user = TASK + "\n\n" + "\n\n".join(blocks)
    if rejected:
        user += f"\n\nA previous answer was rejected: {rejected}. Answer again."
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def request_key(model: str, messages: list[dict]) -> str:
    return hashlib.sha256(json.dumps([model, messages], sort_keys=True).encode()).hexdigest()


def parse_instructions(text: str | None, ids: list[str]) -> dict[str, str]:
    """id -> instruction from a reply; tolerant of code fences, prose around the JSON, a bare list, and a
    list of strings (matched by position when the count is right). Raises ValueError with the reason."""
    if not text or not text.strip():
        raise ValueError("malformed response: empty")
    cleaned = re.sub(r"^```\w*\s*|\s*```$", "", text.strip())
    payload = None
    for start, end in (("{", "}"), ("[", "]")):
        begin, stop = cleaned.find(start), cleaned.rfind(end)
        if begin != -1 and stop > begin:
            try:
                payload = json.loads(cleaned[begin:stop + 1])
                break
            except json.JSONDecodeError:
                continue
    if payload is None:
        raise ValueError(f"malformed response: no JSON in {text[:80]!r}")
    entries = payload.get("instructions") if isinstance(payload, dict) else payload
    if not isinstance(entries, list):
        raise ValueError("malformed response: no `instructions` list")
    if len(entries) != len(ids):
        raise ValueError(f"wrong count: {len(entries)} instructions for {len(ids)} items")
    if all(isinstance(entry, str) for entry in entries):
        return dict(zip(ids, entries))
    found = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("instruction"), str):
            raise ValueError(f"malformed response: entry {str(entry)[:60]!r} has no instruction text")
        found[str(entry.get("id", "")).strip()] = entry["instruction"]
    if set(found) != set(ids):
        raise ValueError(f"wrong ids: got {sorted(found)}, asked for {sorted(ids)}")
    return found


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def check_instruction(text: str, item: InstructionItem, batch: list[InstructionItem],
                      config: OpenAIInstructionsConfig) -> str | None:
    """None when the instruction is usable for `item`, else the reason it is not."""
    text = text.strip()
    if not text:
        return "empty instruction"
    if len(text) < config.min_instruction_chars:
        return f"instruction has {len(text)} chars, fewer than min_instruction_chars={config.min_instruction_chars}"
    if len(text) > config.max_instruction_chars:
        return f"instruction has {len(text)} chars, more than max_instruction_chars={config.max_instruction_chars}"
    n = config.max_copied_words
    section, words = _words(item.text), _words(text)
    shingles = {tuple(section[i:i + n]) for i in range(len(section) - n + 1)}
    if any(tuple(words[i:i + n]) in shingles for i in range(len(words) - n + 1)):
        return f"copies {n} or more consecutive words of the section"
    named = lambda repo: re.search(rf"(?<![\w-]){re.escape(repo.lower())}(?![\w-])", text.lower()) is not None
    others = [other.repo for other in batch if other.repo.lower() != item.repo.lower() and named(other.repo)]
    if others and not named(item.repo):
        return f"names {others[0]!r}, another item's repository, not its own {item.repo!r}"
    return None
