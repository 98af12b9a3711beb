"""The Usage section's facts: a library's usage line built from its manifest, and links to its examples and docs."""

from __future__ import annotations

import pytest

from moxi_pipeline.readme.evidence import Evidence

from moxi_pipeline.readme.grounding import ground_readme
from moxi_pipeline.readme.outline import usage_example, usage_pointers, usage_text
from moxi_pipeline.records import RepoFacts


@pytest.mark.parametrize(("ecosystem", "package", "line"), [
    ("node", "@scope/left-pad", 'const leftPad = require("@scope/left-pad");'),
    ("node", "3d-view", 'const lib3dView = require("3d-view");'),
    ("go", "github.com/octo/fiberlog", 'import "github.com/octo/fiberlog"'),
    ("rust", "fred-rs", "use fred_rs;"),
    ("ruby", "changelog", 'require "changelog"'),
])
def test_a_library_shows_how_code_loads_it_by_its_manifest_name(ecosystem, package, line):
    facts = RepoFacts(name="x", package=package, ecosystem=ecosystem)
    assert line in usage_example(facts)
    assert usage_text(facts) == usage_example(facts)


@pytest.mark.parametrize("facts", [
    RepoFacts(name="app", ecosystem="node"),  # private or unnamed: nothing to require
    RepoFacts(name="cli", package="cli", ecosystem="node", commands=("cli",)),  # its usage is its commands
    RepoFacts(name="go", package="example/local", ecosystem="go"),  # no host in the module path: not importable
    RepoFacts(name="lib", package="lib", ecosystem="java"),  # no rule for this ecosystem
])
def test_no_usage_line_where_the_manifest_does_not_support_one(facts):
    assert usage_example(facts) == ""


def test_the_commands_come_first_and_the_examples_and_docs_folders_are_linked():
    facts = RepoFacts(name="cli", package="cli", ecosystem="node", commands=("cli",), examples_dir="examples",
                      docs_dir="docs")
    assert usage_text(facts) == ("```bash\ncli\n```\n\nMore examples are in [examples/](examples/). "
                                 "The documentation is in [docs/](docs/).")
    assert usage_pointers(RepoFacts(name="x")) == ""


def test_the_usage_facts_survive_the_grounding_pass():
    facts = RepoFacts(name="fiberlog", package="github.com/octo/fiberlog", ecosystem="go", examples_dir="example",
                      docs_dir="docs")
    text = "## Usage\n\n" + usage_text(facts) + "\n"
    tree = ("go.mod", "log.go", "example/main.go", "docs/index.md")
    grounded, report = ground_readme(text, Evidence.of(facts, tree, ()))
    assert grounded == text and report.total() == 0
