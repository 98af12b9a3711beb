"""A description from the key files where no manifest gives one (`facts/descriptions.py`)."""

from __future__ import annotations

import json

import pytest

from moxi_pipeline.readme.evidence import Evidence
from moxi_pipeline.readme.facts import repo_facts
from moxi_pipeline.readme.facts.descriptions import MAX_CHARS, key_file_description
from moxi_pipeline.readme.grounding import ground_readme
from moxi_pipeline.readme.outline import about_opening, render_template
from moxi_pipeline.records import KeyFile, RepoRecord

GO_DOC = """// Copyright 2024 The Octo Authors.

// Package fiber is an Express inspired web framework built on top of Fasthttp,
// the fastest HTTP engine for Go. Designed to ease things up.
package fiber
"""


def record(files: dict[str, str], language: str | None = None) -> RepoRecord:
    return RepoRecord(
        repo_url="https://github.com/octo/widget", owner="octo", repo="widget", readme="# widget\n",
        file_tree=tuple(sorted(files)), key_files=tuple(KeyFile(path=p, content=c) for p, c in files.items()),
        language=language, source="jsonl",
    )


@pytest.mark.parametrize("files, description", [
    ({"Widget.podspec": 'Pod::Spec.new do |s|\n  s.name = "Widget"\n  s.summary = "iOS library for widgets."\nend\n'},
     "iOS library for widgets."),
    ({"project.clj": '(defproject widget "0.1.0"\n  :description "A fast Clojure console library"\n  :url "x")'},
     "A fast Clojure console library"),
    ({"build.sbt": 'name := "widget"\ndescription := "Scala library that detects URLs in text."\n'},
     "Scala library that detects URLs in text."),
    ({"build.gradle.kts": 'group = "io.octo"\ndescription = "A Java wrapper for widgets"\n'}, "A Java wrapper for widgets"),
    ({"CITATION.cff": "cff-version: 1.2.0\nabstract: Example files for a suggested structure.\ntitle: widget\n"},
     "Example files for a suggested structure."),
    ({"codemeta.json": json.dumps({"name": "widget", "description": "Tools for widgets"})}, "Tools for widgets"),
    ({"app.go": GO_DOC},
     "fiber is an Express inspired web framework built on top of Fasthttp, the fastest HTTP engine for Go."),
    ({"setup.py": "from constants import Constants\nsetup(name='widget', description=Constants.DESCRIPTION)\n",
      "constants.py": 'class Constants:\n    DESCRIPTION = "Securely configure your Mac from the terminal."\n'},
     "Securely configure your Mac from the terminal."),
], ids=["podspec", "project.clj", "build.sbt", "build.gradle.kts", "CITATION.cff", "codemeta.json", "go-doc",
        "setup.py-constant"])
def test_each_source_gives_the_description(files, description):
    assert repo_facts(record(files)).description == description


@pytest.mark.parametrize("files", [
    {"sub/build.gradle": 'description = "A subproject only"\n'},                   # a subproject's description
    {"cmd/tool/doc.go": "// Package tool does one thing.\npackage tool\n"},       # a package below the root
    {"main.go": "// Package main is the entry point.\npackage main\n"},           # a command's main package
    {"setup.py": "setup(name='widget', description=long_description)\n"},      # a name no key file assigns
    {"Widget.podspec": "s.summary = '# Widget'\n"},                                  # a heading, not prose
    {"Widget.podspec": f"s.summary = '{'word ' * (MAX_CHARS // 5 + 1)}'\n"},       # longer than a line
    {"codemeta.json": '{"description": '},                                          # broken JSON
])
def test_no_description_from_what_is_not_the_projects_line_of_prose(files):
    assert repo_facts(record(files)).description is None


def test_a_manifests_description_wins_over_the_key_files():
    files = {"package.json": json.dumps({"name": "widget", "description": "From the manifest"}),
             "Widget.podspec": "s.summary = 'From the podspec'\n"}
    assert repo_facts(record(files, language="JavaScript")).description == "From the manifest"


def test_the_first_sentence_is_cut_at_a_sentence_end_not_at_an_abbreviation():
    text = "Tooling for widgets (e.g. dials, i.e. knobs), etc. and more. A second sentence."
    assert key_file_description([KeyFile(path="Widget.podspec", content=f"s.summary = '{text}'\n")]) == (
        "Tooling for widgets (e.g. dials, i.e. knobs), etc. and more.")


def test_the_description_opens_about_and_survives_grounding_untouched():
    repo = record({"app.go": GO_DOC, "go.mod": "module github.com/octo/widget\n\ngo 1.22\n"}, language="Go")
    facts = repo_facts(repo)
    readme = render_template(facts, repo.project_type)
    assert about_opening(facts, repo.project_type) in readme
    grounded, report = ground_readme(readme, Evidence.of(facts, repo.file_tree, repo.key_files))
    assert grounded == readme and about_opening(facts, repo.project_type).startswith("fiber is an Express inspired")


def test_a_description_wrapped_over_lines_opens_about_on_one_line():
    repo = record({"pom.xml": "<project><artifactId>widget</artifactId><description>A library of\n    lightweight"
                   " mathematics</description></project>"}, language="Java")
    assert about_opening(repo_facts(repo), "library") == "A library of lightweight mathematics."
