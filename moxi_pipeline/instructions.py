"""Instructions for SFT samples: what the user asks for, given a README chunk.

`TemplateInstructions` is the deterministic offline generator: the wording depends on the section's
kind (installation, usage, ...) and the repository's project type, and a hash of
(repo_url, chunk_index) picks one of a few phrasings so the model does not learn a single sentence.
Instructions from an OpenAI-compatible model live in `instructions_openai.py`; `sft_dataset` uses them
in place of these when configured with `instructions: openai`.

Section samples for the model-written sections (about, features, usage) use the fixed per-section
instructions of `prompts.SECTION_INSTRUCTIONS` instead, so train and inference see the same words.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

from moxi_pipeline.records import ReadmeChunk

# Section kinds in README order.
SECTION_KINDS = ("about", "installation", "usage", "configuration", "api", "contributing", "license", "other")

# First match wins, so "Getting started with the API" is installation, "Running tests" is contributing.
# Patterns match whole words (`\bcli\b` must not match "client"); stems like `install` take any ending.
_KIND_PATTERNS = (
    ("installation", r"\binstall\w*|getting started|get started|\bset ?up\b|quick ?start|requirements?\b"
                     r"|prerequisites?|\bdownload|\bbuild(ing)?\b"),
    ("contributing", r"contribut\w*|\bdevelop\w*|\bhacking\b|pull requests?|code of conduct|\btest(s|ing)?\b"),
    ("license", r"licen[cs]\w*|copyright"),
    ("usage", r"\busage\b|\bus(e|es|ing)\b|\bexamples?\b|how to|tutorial|\bdemo\b|\brun(ning)?\b"
              r"|\bcommands?\b|\bcli\b"),
    ("configuration", r"\bconfig\w*|\boptions?\b|\bsettings?\b|environment|customi[sz]\w*|parameters?"),
    ("api", r"\bapi\b|\breference\b|\bmethods?\b|\bfunctions?\b|\bclass(es)?\b|\binterface\b|endpoints?"),
    ("about", r"\babout\b|overview|introduction|\bintro\b|what is|description|features?\b|\bwhy\b"
              r"|motivation|background"),
)

# project_type vocabulary (see collect's detect_project_type) -> words a person would write.
_PROJECT_PHRASES = {
    "python_package": "Python package",
    "python_cli": "Python command-line tool",
    "python_library": "Python library",
    "web_application": "web application",
    "javascript_library": "JavaScript library",
    "typescript_library": "TypeScript library",
    "node_package": "Node.js package",
    "rust_crate": "Rust crate",
    "rust_cli": "Rust command-line tool",
    "go_module": "Go module",
    "go_cli": "Go command-line tool",
    "java_project": "Java project",
    "kotlin_project": "Kotlin project",
    "dotnet_project": ".NET project",
    "php_project": "PHP project",
    "ruby_gem": "Ruby gem",
    "data_science": "data science project",
    "documentation": "documentation project",
    "mobile_app": "mobile app",
    "unknown": "software project",
}

# {title}: the section's heading text; {repo}: repository name; {what}: the project phrase.
# "opening" is the untitled preamble (chunk 0 of most READMEs); the rest are SECTION_KINDS.
_SECTION_TEMPLATES = {
    "opening": (
        "Write the opening of the README for `{repo}`, a {what}: the `# {repo}` title and a short summary "
        "of what it does and why it is useful.",
        "Introduce `{repo}`, a {what}, at the top of its README: title, one-paragraph summary, main features.",
        "Start the README of the {what} `{repo}` with its name and a plain description of what it does.",
    ),
    "about": (
        "Write the \"{title}\" section of the README for `{repo}`, a {what}: what it does and its main features.",
        "Describe the {what} `{repo}` in a section titled \"{title}\": its purpose and what makes it useful.",
        "Write \"{title}\" for `{repo}` ({what}): a plain overview of what it does.",
    ),
    "installation": (
        "Write the \"{title}\" section of the README for `{repo}`, a {what}: how to install it, with the "
        "exact commands in a code block.",
        "Explain how to install and set up the {what} `{repo}` in a section titled \"{title}\".",
        "Write \"{title}\" for `{repo}` ({what}): requirements first, then the install commands.",
    ),
    "usage": (
        "Write the \"{title}\" section of the README for `{repo}`, a {what}: show how to use it with a short "
        "example.",
        "Show a user how to use the {what} `{repo}` in a section titled \"{title}\", with code examples.",
        "Write \"{title}\" for `{repo}` ({what}): the commonest way to run or call it, with an example.",
    ),
    "configuration": (
        "Write the \"{title}\" section of the README for `{repo}`, a {what}: the options a user can set and "
        "their defaults.",
        "Document how to configure the {what} `{repo}` in a section titled \"{title}\".",
        "Write \"{title}\" for `{repo}` ({what}): list the settings, what each one does, and an example.",
    ),
    "api": (
        "Write the \"{title}\" section of the README for `{repo}`, a {what}: the public API, with signatures "
        "and short descriptions.",
        "Document the API of the {what} `{repo}` in a section titled \"{title}\".",
        "Write \"{title}\" for `{repo}` ({what}): the main functions or endpoints and how to call them.",
    ),
    "contributing": (
        "Write the \"{title}\" section of the README for `{repo}`, a {what}: how to set up a development "
        "environment, run the tests and send changes.",
        "Tell contributors to the {what} `{repo}` how to help, in a section titled \"{title}\".",
        "Write \"{title}\" for `{repo}` ({what}): development setup, tests, and pull requests.",
    ),
    "license": (
        "Write the \"{title}\" section of the README for `{repo}`, a {what}: name the license.",
        "State the license of the {what} `{repo}` in a section titled \"{title}\".",
        "Write \"{title}\" for `{repo}` ({what}): the license and where to find its full text.",
    ),
    "other": (
        "Write the \"{title}\" section of the README for `{repo}`, a {what}.",
        "Write the part of the README of the {what} `{repo}` titled \"{title}\".",
        "Write \"{title}\" for the README of `{repo}` ({what}), based on its files.",
    ),
}
_CONTINUED_TEMPLATE = "Continue the \"{title}\" section of the README for `{repo}`, a {what}."
_CONTINUED_UNTITLED = "Continue the README for `{repo}`, a {what}."
VARIANTS = 3  # every entry of _SECTION_TEMPLATES has this many phrasings


class InstructionGenerator(Protocol):
    name: str

    def instructions_for(self, chunks: list[ReadmeChunk]) -> list[str]: ...


def project_phrase(project_type: str) -> str:
    """`python_cli` -> "Python command-line tool"; an unlisted type reads as its words ("foo_bar" -> "foo bar")."""
    return _PROJECT_PHRASES.get(project_type, project_type.replace("_", " ").strip() or "software project")


def section_kind(section_title: str) -> str:
    """Map a heading to one of SECTION_KINDS by keywords; "" (the preamble) is "about"."""
    words = section_title.strip().lower()
    if not words:
        return "about"
    for kind, pattern in _KIND_PATTERNS:
        if re.search(pattern, words):
            return kind
    return "other"


def section_instruction(
    section_title: str, repo: str, project_type: str, variant: int = 0, continued: bool = False
) -> str:
    """The request for one README section; `continued` is a chunk that picks up mid-section."""
    if variant < 0:
        raise ValueError(f"variant must be >= 0, got {variant}")
    fields = {"title": section_title.strip(), "repo": repo, "what": project_phrase(project_type)}
    if continued:
        return (_CONTINUED_TEMPLATE if fields["title"] else _CONTINUED_UNTITLED).format(**fields)
    # The preamble (no heading) is the README's opening: title and summary.
    templates = _SECTION_TEMPLATES[section_kind(section_title) if fields["title"] else "opening"]
    return templates[variant % len(templates)].format(**fields)


def pick_variant(repo_url: str, chunk_index: int, variants: int = VARIANTS) -> int:
    """sha256, not hash(): Python salts str hashes per process, and the dataset must be reproducible."""
    digest = hashlib.sha256(f"{repo_url}\n{chunk_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % variants


_HEADING_START = re.compile(r"^\s*(#{1,6}(\s|$)|<h[1-6][\s>]|[^\n]+\n[=-]+[ \t]*(\n|$))", re.IGNORECASE)
_H1_START = re.compile(r"^\s*(#(\s|$)|<h1[\s>]|[^\n]+\n=+[ \t]*(\n|$))", re.IGNORECASE)


def opens_with_heading(content: str) -> bool:
    return bool(_HEADING_START.match(content))


class TemplateInstructions:
    """Deterministic, offline: the same chunk always gets the same instruction."""

    name = "template"

    def instructions_for(self, chunks: list[ReadmeChunk]) -> list[str]:
        return [self.instruction_for(chunk) for chunk in chunks]

    def instruction_for(self, chunk: ReadmeChunk) -> str:
        title = chunk.section_title
        # Chunk 0 under the README's H1 is the opening, whatever the H1 says ("httpie: a CLI client"
        # is a title, not a usage section).
        if chunk.chunk_index == 0 and _H1_START.match(chunk.content):
            title = ""
        # A later chunk that does not open with a heading was cut from a long section (or is a later
        # piece of a README with no headings): asking for "the opening" there would teach the wrong thing.
        continued = chunk.chunk_index > 0 and not opens_with_heading(chunk.content)
        variant = pick_variant(chunk.repo_url, chunk.chunk_index)
        return section_instruction(title, chunk.repo, chunk.project_type, variant, continued)
