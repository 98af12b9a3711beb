"""The README outline, chosen from the facts, and the sections that are facts rendered as Markdown.

Sections follow the seed's `readme_structure`: the title and About paragraph, Features, Built With,
Installation (Getting Started), Usage, Contributing and License; a section appears only when the facts
support it. Each section is written by the model (`model`), rendered from facts (`facts`), or both: the
model's paragraph followed by the facts (Usage: prose, then the commands the repository really has).

`render_template` is the deterministic floor: the same outline with no model at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from moxi_pipeline.readme.facts import ECOSYSTEM_NAMES, RepoFacts
from moxi_pipeline.readme.prompts import project_phrase

Writer = Literal["model", "facts", "both"]


@dataclass(frozen=True)
class SectionPlan:
    key: str  # about | features | built_with | installation | usage | contributing | license
    heading: str  # the Markdown the section opens with ("# name" for about)
    writer: Writer
    facts_text: str = ""  # Markdown after the heading (facts) or after the model's prose (both)


def about_opening(facts: RepoFacts, project_type: str) -> str:
    """The About paragraph's first sentence: the manifest's description, else what the tree says it is."""
    if facts.description:
        description = " ".join(facts.description.split())  # a pom.xml's description wraps over indented lines
        return description if description.endswith((".", "!", "?")) else description + "."
    return f"{facts.name} is a {project_phrase(project_type)}."


def _code(lines, language: str = "bash") -> str:
    return f"```{language}\n" + "\n".join(lines) + "\n```"


def installation_text(facts: RepoFacts) -> str:
    parts = []
    if facts.requires:
        parts.append(f"Requires {facts.requires}.")
    if facts.install:
        parts.append(_code(facts.install[:1] if facts.repo_url and len(facts.install) > 1 else facts.install))
    if facts.repo_url:
        folder = facts.repo_url.rstrip("/").rsplit("/", 1)[-1]
        source = [f"git clone {facts.repo_url}.git", f"cd {folder}"] + list(facts.install[1:2])
        parts.append("Or build it from source:\n\n" + _code(source) if facts.install else _code(source))
    return "\n\n".join(parts)


def _identifier(package: str) -> str:
    """A variable name for a package: "@scope/left-pad" -> leftPad."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", package.rsplit("/", 1)[-1]) if w]
    name = (words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:])) if words else "lib"
    return name if not name[0].isdigit() else f"lib{name}"


def usage_example(facts: RepoFacts) -> str:
    """How code uses the library, built only from the manifest's own names (so grounded by construction):
    Python `import`, Node `require`, Go `import`, Rust `use`, Ruby `require`. Empty for an application: one
    whose manifest is private or that installs commands (its usage is those commands)."""
    package = facts.package
    if facts.commands:
        return ""
    if facts.ecosystem == "python" and facts.python_packages:
        return _code([f"import {facts.python_packages[0]}"], "python")
    if not package:
        return ""
    if facts.ecosystem == "node":
        return _code([f"const {_identifier(package)} = require(\"{package}\");"], "js")
    if facts.ecosystem == "go" and "." in package.split("/", 1)[0]:
        return _code([f"import \"{package}\""], "go")
    if facts.ecosystem == "rust":
        return _code([f"use {package.replace('-', '_')};"], "rust")
    if facts.ecosystem == "ruby":
        return _code([f"require \"{package}\""], "ruby")
    return ""


def usage_pointers(facts: RepoFacts) -> str:
    """Where the repository shows more: its examples and documentation folders, as links."""
    lines = []
    if facts.examples_dir:
        lines.append(f"More examples are in [{facts.examples_dir}/]({facts.examples_dir}/).")
    if facts.docs_dir:
        lines.append(f"The documentation is in [{facts.docs_dir}/]({facts.docs_dir}/).")
    return " ".join(lines)


def usage_text(facts: RepoFacts) -> str:
    """The commands an installed user runs, else how code uses the library; then where to read more."""
    commands = [c for c in facts.commands if c != facts.test_command and c not in ("npm run lint", "make test")]
    parts = [_code(commands) if commands else "", usage_example(facts), usage_pointers(facts)]
    return "\n\n".join(part for part in parts if part)


def contributing_text(facts: RepoFacts) -> str:
    parts = ["Contributions are welcome."]
    if facts.contributing_file:
        parts[0] += f" See [{facts.contributing_file}]({facts.contributing_file}) for how to get started."
    if facts.test_command:
        parts.append("Run the tests with:\n\n" + _code([facts.test_command]))
    return "\n\n".join(parts)


def license_text(facts: RepoFacts) -> str:
    where = f" See [{facts.license_file}]({facts.license_file}) for the full text." if facts.license_file else ""
    if facts.license:
        name = facts.license if facts.license.lower().endswith("license") else f"{facts.license} license"
        return f"{facts.name} is released under the {name}.{where}"
    return f"See [{facts.license_file}]({facts.license_file})." if facts.license_file else ""


def built_with_text(facts: RepoFacts) -> str:
    items = list(facts.frameworks)
    if facts.ecosystem and ECOSYSTEM_NAMES.get(facts.ecosystem) not in items:
        items.insert(0, ECOSYSTEM_NAMES[facts.ecosystem])
    return "\n".join(f"- {item}" for item in items)


def plan_outline(facts: RepoFacts, with_features: bool = True) -> list[SectionPlan]:
    """The sections of this repository's README, in order."""
    plan = [SectionPlan("about", f"# {facts.name}", "model")]
    if with_features:
        plan.append(SectionPlan("features", "## Features", "model"))
    if facts.frameworks:
        plan.append(SectionPlan("built_with", "## Built With", "facts", built_with_text(facts)))
    if facts.install or facts.repo_url:
        plan.append(SectionPlan("installation", "## Installation", "facts", installation_text(facts)))
    plan.append(SectionPlan("usage", "## Usage", "both", usage_text(facts)))
    if facts.contributing_file or facts.test_command:
        plan.append(SectionPlan("contributing", "## Contributing", "facts", contributing_text(facts)))
    if facts.license or facts.license_file:
        plan.append(SectionPlan("license", "## License", "facts", license_text(facts)))
    return plan


def join_sections(parts: list[str]) -> str:
    return "\n\n".join(part.strip() for part in parts if part.strip()) + "\n"


def render_template(facts: RepoFacts, project_type: str) -> str:
    """The deterministic floor: the outline with facts only, no model."""
    parts = []
    for section in plan_outline(facts, with_features=False):
        if section.key == "about":
            parts.append(f"{section.heading}\n\n{about_opening(facts, project_type)}")
        elif section.facts_text:
            parts.append(f"{section.heading}\n\n{section.facts_text}")
    return join_sections(parts)
