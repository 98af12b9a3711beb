"""Completing an author's README: only the sections it lacks are added, and the author's text is untouched."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from moxi_pipeline.collect.local_repos import scan_repository
from moxi_pipeline.readme.complete import (
    ground_block,
    COMPLETABLE,
    complete_readme,
    heading_kind,
    insert_sections,
    present_sections,
)
from moxi_pipeline.readme.decoding import DecodingConfig
from moxi_pipeline.readme.evidence import Evidence
from moxi_pipeline.readme.grounding import ground_readme

# No example database: runs stay independent and leave no .hypothesis/ folder in the checkout.
PROPERTY = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def make_renamer(root):
    """A Python CLI whose facts support every completable section: Click, pip, a command, tests, a license."""
    (root / "renamer").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "renamer"\ndescription = "Rename files in bulk."\nlicense = "MIT"\n'
        'dependencies = ["click>=8"]\n\n[project.scripts]\nrenamer = "renamer.cli:main"\n')
    (root / "renamer" / "__init__.py").write_text('"""Rename files in bulk."""\n')
    (root / "renamer" / "cli.py").write_text("import click\n\n\n@click.command()\ndef main():\n    print('renamed')\n")
    (root / "tests" / "test_cli.py").write_text("def test_main():\n    pass\n")
    (root / "LICENSE").write_text("MIT License\n\nCopyright (c) 2024 Octo Cat\n")
    (root / "CONTRIBUTING.md").write_text("Open an issue first.\n")
    return root


@pytest.fixture(scope="module")
def renamer(tmp_path_factory):
    return scan_repository(make_renamer(tmp_path_factory.mktemp("repo") / "renamer"))


def is_subsequence(small: list[str], big: list[str]) -> bool:
    rest = iter(big)
    return all(any(line == other for other in rest) for line in small)


# Headings by the section they name; "other" ones anchor nothing.
HEADINGS = {
    "built_with": ["Built With", "Tech stack"],
    "installation": ["Installation", "Getting started", "Quick start", "Requirements"],
    "usage": ["Usage", "Examples", "How to use it"],
    "contributing": ["Contributing", "Running tests", "Development"],
    "license": ["License", "Licence", "Copyright"],
    "other": ["FAQ", "Acknowledgements", "Roadmap"],
}
PROSE = st.sampled_from([
    "Renames files.", "It is *fast*  ", "See https://example.org/unknown for more.", "- a list item", "1. first",
    "> a quote", "[![badge](https://img.shields.io/x.svg)](https://ci.example)", "<p align=\"center\">hi</p>",
    "```bash\nsudo rm -rf /\n```", "    indented code", "", "Trailing\r", "| a | b |\n|---|---|\n| 1 | 2 |",
    "Run `renamer --help`.", "###### a deep heading", "Setext\n------",
])


SOME_KINDS = st.lists(st.sampled_from(list(HEADINGS)), max_size=6)


@st.composite
def readmes(draw, kinds=SOME_KINDS):
    lines = []
    if draw(st.booleans()):
        lines += [draw(st.sampled_from(["# renamer", "<h1 align=\"center\">renamer</h1>", "renamer\n=======", "# Renamer 2"])), ""]
    lines += draw(st.lists(PROSE, min_size=1, max_size=3))
    level = draw(st.sampled_from(["#", "##", "###"]))
    for kind in draw(kinds):
        lines += ["", f"{level} {draw(st.sampled_from(HEADINGS[kind]))}", ""] + draw(st.lists(PROSE, max_size=3))
    text = "\n".join(lines)
    return text + draw(st.sampled_from(["", "\n", "\n\n"]))


@PROPERTY
@given(readme=readmes())
def test_the_authors_lines_stay_in_order_and_added_text_is_grounded(renamer, readme):
    assume(readme.strip())  # a blank README is refused (test_an_empty_readme_is_refused)
    completed = complete_readme(None, None, renamer, readme)
    # Rule: every line of the original is in the output, in order, byte for byte.
    assert is_subsequence(readme.split("\n"), completed.text.split("\n"))
    # Rule: only sections the README lacked are added, and each once.
    assert not set(completed.added) & present_sections(readme)
    assert present_sections(completed.text) >= set(COMPLETABLE)
    # Rule: the grounding pass would remove nothing of the added text (as it stands in the output).
    evidence = Evidence.of(completed.facts, renamer.file_tree, renamer.key_files)
    for block in completed.added.values():
        body = block.split("\n", 1)[1]
        assert body in completed.text
        _, report = ground_readme(block, evidence)
        assert report.total() == 0, report.removed


@PROPERTY
@given(readme=readmes(kinds=st.permutations(list(HEADINGS))))
def test_a_readme_with_every_section_comes_back_unchanged(renamer, readme):
    completed = complete_readme(None, None, renamer, readme)
    assert completed.text == readme and completed.unchanged


def test_sections_go_in_outline_order_at_the_readmes_level():
    readme = "# proj\n\nIntro.\n\n### Usage\n\nrun it\n\n### FAQ\n\nno.\n\n### License\n\nMIT\n"
    blocks = {"installation": "## Installation\n\npip install proj", "contributing": "## Contributing\n\nWelcome."}
    assert insert_sections(readme, blocks) == (
        "# proj\n\nIntro.\n\n### Installation\n\npip install proj\n\n### Usage\n\nrun it\n\n### FAQ\n\nno.\n\n"
        "### Contributing\n\nWelcome.\n\n### License\n\nMIT\n")


@pytest.mark.parametrize(("title", "kind"), [("Built with", "built_with"), ("Tech Stack", "built_with"),
                                             ("Getting started", "installation"), ("FAQ", "other")])
def test_heading_kind(title, kind):
    assert heading_kind(title) == kind


def test_a_thin_readme_gets_the_facts_sections(renamer):
    readme = "# renamer [![PyPI](https://img.shields.io/pypi/v/renamer.svg)](https://pypi.org/project/renamer)\n\nRenames.\n"
    completed = complete_readme(None, None, renamer, readme)
    assert list(completed.added) == ["built_with", "installation", "usage", "contributing", "license"]
    assert completed.text.startswith(readme + "\n## Built With\n\n- Python\n- Click\n\n## Installation\n\n")
    assert "## License\n\nrenamer is released under the MIT license. See [LICENSE](LICENSE) for the full text.\n" in completed.text


def test_an_empty_readme_is_refused(renamer):
    with pytest.raises(ValueError, match="renamer: the README is empty"):
        complete_readme(None, None, renamer, " \n")


def test_the_model_writes_usage_prose_and_it_is_grounded(renamer, tiny_model_dir):
    from moxi_pipeline.models.base import load_model, load_tokenizer

    model, tokenizer = load_model(tiny_model_dir, "cpu").float(), load_tokenizer(tiny_model_dir)
    readme = "# renamer\n\nRenames.\n\n## License\n\nMIT.\n"
    completed = complete_readme(model, tokenizer, renamer, readme, DecodingConfig(max_new_tokens=24))
    assert is_subsequence(readme.split("\n"), completed.text.split("\n"))
    assert completed.new_tokens > 0 and "license" not in completed.added
    usage = completed.added["usage"]
    assert usage.startswith("## Usage\n\n") and usage.endswith("```bash\nrenamer\n```")
    assert completed.text.index("## Usage") < completed.text.index("## License")
    _, report = ground_readme(usage, Evidence.of(completed.facts, renamer.file_tree, renamer.key_files))
    assert report.total() == 0


def test_cli_generate_complete(tmp_path, monkeypatch, tiny_model_dir, capsys):
    import shutil

    from moxi_pipeline.cli import main

    monkeypatch.setenv("MOXI_DATA_DIR", str(tmp_path / "data"))
    shutil.copytree(tiny_model_dir, tmp_path / "data" / "models" / "base_model")
    repo = make_renamer(tmp_path / "renamer")
    assert main(["generate", str(repo), "--complete", "--adapter", "none", "--device", "cpu"]) == 2
    assert "--complete: renamer has no README to complete" in capsys.readouterr().err
    (repo / "README.md").write_text("# renamer\n\nMine.\n\n## Installation\n\nCopy it.\n")
    out = tmp_path / "README.completed.md"
    assert main(["generate", str(repo), "--complete", "--adapter", "none", "--device", "cpu", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# renamer\n\nMine.\n\n## Built With\n\n- Python\n- Click\n\n## Installation\n\nCopy it.\n\n## Usage")
    assert "added built_with, usage, contributing, license" in capsys.readouterr().err


def test_an_added_section_may_link_to_the_authors_headings():
    """The grounding pass of an added section judges in-page links against the whole finished README: a link to
    the author's own heading stays, a link to no heading loses its target and keeps its text."""
    from moxi_pipeline.readme.evidence import heading_anchors
    from moxi_pipeline.readme.grounding import GroundingReport
    from moxi_pipeline.records import RepoFacts

    readme = "# tool\n\nIntro.\n\n## Configuration\n\nSet it.\n"
    block = "## Usage\n\nSee [Configuration](#configuration) and [Nowhere](#nowhere) for more.\n"
    report = GroundingReport()
    evidence = Evidence.of(RepoFacts(name="tool"), ("README.md",), ())
    grounded = ground_block(block, evidence, report, heading_anchors(readme + "\n\n" + block))
    assert "[Configuration](#configuration)" in grounded
    assert "[Nowhere]" not in grounded and "Nowhere" in grounded
    assert report.anchors == 1
