from __future__ import annotations

import subprocess
import sys

import pytest

from moxi_pipeline.instructions import (
    SECTION_KINDS,
    VARIANTS,
    InstructionGenerator,
    TemplateInstructions,
    pick_variant,
    project_phrase,
    section_instruction,
    section_kind,
)
from moxi_pipeline.outline import about_opening
from moxi_pipeline.records import ReadmeChunk, RepoFacts


def make_chunk(content: str, title: str = "", index: int = 0, project_type: str = "python_package") -> ReadmeChunk:
    return ReadmeChunk(repo_url="https://example.com/o/foo", repo="foo", chunk_index=index, section_title=title,
                       content=content, file_tree=("foo.py",), project_type=project_type)


@pytest.mark.parametrize(
    "title, kind",
    [
        ("", "about"), ("Installation", "installation"), ("🚀 Getting Started", "installation"),
        ("Quick start", "installation"), ("Usage", "usage"), ("Examples", "usage"), ("CLI", "usage"),
        ("Configuration", "configuration"), ("Options", "configuration"), ("API Reference", "api"),
        ("Contributing", "contributing"), ("Running tests", "contributing"), ("License", "license"),
        ("Licence", "license"), ("Features", "about"), ("Overview", "about"), ("Acknowledgements", "other"),
        ("HTTP client", "other"),  # "client" must not match the `cli` keyword
    ],
)
def test_section_kind(title, kind):
    assert section_kind(title) == kind
    assert kind in SECTION_KINDS


@pytest.mark.parametrize(
    "project_type, phrase",
    [("python_cli", "Python command-line tool"), ("web_application", "web application"),
     ("rust_crate", "Rust crate"), ("unknown", "software project"), ("elixir_app", "elixir app"),
     ("", "software project")],
)
def test_project_phrase(project_type, phrase):
    assert project_phrase(project_type) == phrase
    # the template's About sentence when the manifest gives no description
    assert about_opening(RepoFacts(name="foo"), project_type) == f"foo is a {phrase}."


def test_section_instruction_varies_by_kind_and_project_type():
    titles = ["", "Installation", "Usage", "Configuration", "API", "Contributing", "License", "Acknowledgements"]
    by_kind = {section_instruction(title, "foo", "python_cli") for title in titles}
    assert len(by_kind) == len(titles)
    assert section_instruction("Usage", "foo", "python_cli") != section_instruction("Usage", "foo", "rust_crate")
    assert "Rust crate" in section_instruction("Usage", "foo", "rust_crate")


def test_section_instruction_variants_differ_and_wrap():
    variants = [section_instruction("Usage", "foo", "python_cli", variant) for variant in range(VARIANTS)]
    assert len(set(variants)) == VARIANTS
    assert section_instruction("Usage", "foo", "python_cli", VARIANTS) == variants[0]
    assert all('"Usage"' in variant for variant in variants)


def test_section_instruction_rejects_negative_variant():
    with pytest.raises(ValueError, match="variant must be >= 0, got -1"):
        section_instruction("Usage", "foo", "python_cli", -1)


def test_pick_variant_is_stable_across_processes():
    # str hash() is salted per process; the dataset must not be
    code = "from moxi_pipeline.instructions import pick_variant as p; print([p('https://example.com/o/foo', i) for i in range(20)])"
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
               for _ in range(2)}
    assert outputs == {str([pick_variant("https://example.com/o/foo", i) for i in range(20)]) + "\n"}


def test_pick_variant_is_deterministic_and_spread():
    picks = [pick_variant("https://example.com/o/foo", index) for index in range(60)]
    assert picks == [pick_variant("https://example.com/o/foo", index) for index in range(60)]
    assert set(picks) == set(range(VARIANTS))


def test_template_generator_is_deterministic_and_typed():
    generator: InstructionGenerator = TemplateInstructions()
    chunks = [make_chunk("# foo\n\nintro"), make_chunk("## Usage\n\nrun", "Usage", 1),
              make_chunk("more usage", "Usage", 2), make_chunk("## License\n\nMIT", "License", 3)]
    first = generator.instructions_for(chunks)
    assert generator.name == "template"
    assert first == TemplateInstructions().instructions_for(chunks)
    assert len(first) == 4


def test_template_opening_continued_and_titled_chunks():
    generator = TemplateInstructions()
    # chunk 0 under an H1 is the opening, whatever the H1 text says
    opening = generator.instruction_for(make_chunk("# foo: a CLI client\n\nintro", "foo: a CLI client"))
    assert opening == section_instruction("", "foo", "python_package", pick_variant("https://example.com/o/foo", 0))
    # a chunk that starts mid-section (no heading) continues that section
    assert generator.instruction_for(make_chunk("more text", "Usage", 2)) == (
        'Continue the "Usage" section of the README for `foo`, a Python package.')
    untitled = generator.instruction_for(make_chunk("more text", "", 2))
    assert untitled == "Continue the README for `foo`, a Python package."
    # a chunk opening with its own heading gets that section's instruction
    titled = generator.instruction_for(make_chunk("Usage\n-----\n\nrun", "Usage", 1))
    assert titled == section_instruction("Usage", "foo", "python_package", pick_variant("https://example.com/o/foo", 1))
