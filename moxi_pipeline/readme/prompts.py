"""The one prompt format, shared by training, evaluation and `moxi generate`.

A README is written section by section (`compose.py`). Each section's prompt is short enough for a 135M
model: the facts block (`repo_facts`), the key files that matter to that section, the top of the file
tree, then the instruction last, so the request is the freshest thing in context. The answer is forced
to open with the section's heading (`section_prefix`), in training and at inference alike.
"""

from __future__ import annotations

from moxi_pipeline.records import RepoFacts, SampleInput, SftSample

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

SYSTEM_PROMPT = (
    "You write README.md sections for software repositories. State only what the facts and files show: "
    "never invent file names, links, commands or authors. Never copy the key files back."
)
MODEL_SECTIONS = ("about", "features", "usage")
SECTION_INSTRUCTIONS = {
    "about": "Write the opening of the README for `{name}`: the title, then one paragraph on what it does "
             "and why it is useful.",
    "features": "Write the Features section of the README for `{name}`: a short bullet list of what it does, "
                "based on the files above.",
    "usage": "Write the Usage section of the README for `{name}`: one short paragraph on how to use it. "
             "Mention only commands and files listed above.",
}
SECTION_HEADINGS = {"features": "## Features", "usage": "## Usage"}

# Code and paths run ~2.6 characters per token (measured on dev.jsonl with SmolLM2's tokenizer), so
# 600 + 400 characters + system + instruction ~ 480 tokens: the whole prompt fits the demo's 640-token
# training sequence untruncated, and inference sees exactly what training saw.
PROMPT_KEY_FILE_CHARS = 600
PROMPT_TREE_CHARS = 400


def render_key_files(sample_input: SampleInput, max_chars: int = PROMPT_KEY_FILE_CHARS) -> str:
    """Key files as `--- path ---` blocks (not code fences: a fence invites the model to continue it)."""
    blocks, budget = [], max_chars
    per_file = max(120, max_chars // max(1, len(sample_input.key_files)))
    for key_file in sample_input.key_files:
        if budget <= 0:
            break
        text = key_file.content.strip()[: min(per_file, budget)]
        blocks.append(f"--- {key_file.path} ---\n{text}")
        budget -= len(text)
    return "\n".join(blocks)


def render_file_tree(file_tree: tuple[str, ...], max_chars: int = PROMPT_TREE_CHARS) -> str:
    """Shallow paths first, so a big repository still shows its top level."""
    ordered = sorted(file_tree, key=lambda path: (path.count("/"), path))
    lines, used = [], 0
    for path in ordered:
        if used + len(path) + 1 > max_chars:
            lines.append(f"... ({len(ordered) - len(lines)} more files)")
            break
        lines.append(path)
        used += len(path) + 1
    return "\n".join(lines)


def project_phrase(project_type: str) -> str:
    """`python_cli` -> "Python command-line tool"; an unlisted type reads as its words ("foo_bar" -> "foo bar")."""
    return _PROJECT_PHRASES.get(project_type, project_type.replace("_", " ").strip() or "software project")


def render_facts(facts: RepoFacts, project_type: str) -> str:
    """The facts block: one `Label: value` line per known fact."""
    lines = [f"Project: {facts.name} ({project_phrase(project_type)})"]
    fields = (
        ("Description", facts.description), ("Language", facts.language), ("Requires", facts.requires),
        ("Install", "; ".join(facts.install)), ("Commands", "; ".join(facts.commands)),
        ("Built with", ", ".join(facts.frameworks)), ("Tests", facts.test_command), ("License", facts.license),
    )
    lines += [f"{label}: {value}" for label, value in fields if value]
    return "\n".join(lines)


def section_prefix(section: str, facts: RepoFacts, opening: str = "") -> str:
    """What the answer is forced to open with: the heading, and for About at inference its first
    sentence (`opening`); training samples open with the heading alone and continue with the real text."""
    if section == "about":
        return f"# {facts.name}\n\n" + (f"{opening} " if opening else "")
    return SECTION_HEADINGS[section] + "\n\n"


def render_input(sample_input: SampleInput, repo: str) -> str:
    parts = []
    if sample_input.facts is not None:
        parts.append("Facts:\n" + render_facts(sample_input.facts, sample_input.project_type))
    if sample_input.key_files:
        parts.append("Key files:\n" + render_key_files(sample_input))
    parts.append("File tree:\n" + render_file_tree(sample_input.file_tree))
    if sample_input.facts is None:
        parts.append(f"Project: {repo} ({sample_input.project_type})")
    return "\n\n".join(parts)


def section_instruction(section: str, name: str) -> str:
    return SECTION_INSTRUCTIONS[section].format(name=name)


def build_messages(instruction: str, sample_input: SampleInput, repo: str) -> list[dict]:
    """Chat messages for the prompt: system, then one user turn that ends with the instruction."""
    user = render_input(sample_input, repo) + "\n\n" + instruction
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def plain_messages(instruction: str, name: str, project_type: str) -> list[dict]:
    """The same request with no repository context but the project's name: what context-aware decoding
    (`DecodingConfig.context_contrast`) contrasts the real prompt with."""
    user = f"Project: {name} ({project_phrase(project_type)})\n\n{instruction}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def to_prompt_completion(sample: SftSample) -> dict:
    """TRL's conversational prompt-completion format: loss falls on the completion only."""
    return {
        "prompt": build_messages(sample.instruction, sample.input, sample.repo),
        "completion": [{"role": "assistant", "content": sample.content}],
    }
