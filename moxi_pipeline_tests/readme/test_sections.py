"""`sections.section_kind` (a heading's kind) and `prompts.project_phrase` (a project type in words)."""

from __future__ import annotations

import pytest

from moxi_pipeline.readme.outline import about_opening
from moxi_pipeline.readme.prompts import project_phrase
from moxi_pipeline.readme.sections import SECTION_KINDS, section_kind
from moxi_pipeline.records import RepoFacts


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
