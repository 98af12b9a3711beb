from __future__ import annotations

import re

import pytest

from moxi_pipeline.dataset.chunk import (
    Section,
    chunk_readme,
    chunk_records,
    normalize_readme,
    split_sections,
)
from moxi_pipeline.records import KeyFile, RepoRecord


def non_whitespace(text: str) -> str:
    return re.sub(r"\s+", "", text)


def paragraph(n_chars: int, word: str = "lorem") -> str:
    """A single-line paragraph of exactly n_chars characters."""
    return ((word + " ") * (n_chars // (len(word) + 1) + 1))[:n_chars].strip().ljust(n_chars, "x")


def fence(n_lines: int, marker: str = "```") -> str:
    body = "\n".join(f"# comment {i}\nprint({i})\n" for i in range(n_lines))  # blank lines and `#` inside
    return f"{marker}python\n{body}\n{marker}"


def table(n_rows: int) -> str:
    rows = "\n".join(f"| row {i} | {'value ' * 8}|" for i in range(n_rows))
    return "| name | value |\n|---|---|\n" + rows


# Markdown of very different shapes; every one must come back whole.
READMES = {
    "short": "# tiny\n\nOne line.",
    "no_headings": "\n\n".join(paragraph(700, f"w{i}") for i in range(5)),
    "sections": "\n\n".join(f"## Part {i}\n\n{paragraph(300 + 150 * i)}" for i in range(8)),
    "huge_code": "# big\n\nintro\n\n" + fence(200) + "\n\n## After\n\ntail text",
    "huge_table": "# t\n\n" + paragraph(900) + "\n\n" + table(60) + "\n\n## Next\n\n" + paragraph(200),
    "long_section": "# one\n\n" + "\n\n".join(paragraph(450, f"p{i}") for i in range(12)),
    "long_paragraph": "# lines\n\n" + "\n".join(paragraph(90, f"l{i}") for i in range(60)),
    "unicode": "# 日本語 🚀\n\nこんにちは世界。" * 3 + "\n\n## Ünïcödé\n\nçà et là — “quotes” ✨",
    "html": '<p align="center">\n  <img src="logo.png">\n</p>\n\n<h1>Name</h1>\n\n'
    + "<details>\n<summary>More</summary>\n\n"
    + paragraph(600)
    + "\n\n</details>\n\n## Usage\n\nrun it",
    "setext": "Title\n=====\n\nintro\n\nInstall\n-------\n\npip install it\n\n" + paragraph(1500),
    "unclosed_fence": "# rst-ish\n\n~~~~~~~~\n\n## Still a heading\n\n" + paragraph(2500),
    "front_matter": "---\ntitle: x\nlayout: page\n---\n# Real\n\nbody " + paragraph(50),
    "crlf": "# A\r\n\r\ntext one\r\n\r\n## B\r\n\r\ntext two\r\n",
    "rule_first": "---\n\nWelcome to the project: it renames files.\n\n---\n\n## Install\n\npip install it\n",
    "bom_separators": "\ufeff# Title\r\n\r\nline\u2028still one line\x85and\u2029this\r\n",
}
# What each README's chunks must hold, when that is not the whole raw README: front matter is metadata.
FRONT_MATTER = {"front_matter": "---\ntitle: x\nlayout: page\n---\n"}


@pytest.mark.parametrize("name", sorted(READMES))
@pytest.mark.parametrize("sizes", [(1000, 2000), (100, 300), (1, 50)])
def test_never_drops_text(name, sizes):
    # Rule: the chunks, concatenated, hold every non-whitespace character of the RAW README, in order
    # (the normalized text would hide whatever normalizing itself drops), less a leading BOM and front matter.
    readme = READMES[name]
    chunks = chunk_readme(readme, *sizes)
    raw = readme.lstrip("\ufeff").removeprefix(FRONT_MATTER.get(name, ""))
    assert non_whitespace("".join(chunk.text for chunk in chunks)) == non_whitespace(raw)
    assert all(chunk.text.strip() for chunk in chunks)


@pytest.mark.parametrize("name", sorted(READMES))
def test_chunks_are_exact_slices(name):
    # Rule: a chunk is a verbatim slice of the README; only blank lines between chunks are not in any chunk.
    text = normalize_readme(READMES[name])
    position = 0
    for chunk in chunk_readme(READMES[name], 100, 400):
        found = text.find(chunk.text, position)
        assert found >= position and not text[position:found].strip()
        position = found + len(chunk.text)
    assert not text[position:].strip()


@pytest.mark.parametrize("readme", ["", "   ", "\n\n\t\n", "\r\n\r\n"])
def test_empty_input_gives_no_chunks(readme):
    assert chunk_readme(readme) == []
    assert split_sections(readme) == []


def test_short_readme_is_one_chunk_not_dropped():
    assert chunk_readme("# tiny\n\nOne line.") == [Section("tiny", "# tiny\n\nOne line.")]


def test_no_headings_packs_paragraphs_under_an_empty_title():
    chunks = chunk_readme(READMES["no_headings"], 1000, 2000)
    # 5 paragraphs of 700 chars: 700 < 1000 so the second joins (1402), then 1402 >= 1000 closes it.
    assert [len(chunk.text) for chunk in chunks] == [1402, 1402, 700]
    assert {chunk.title for chunk in chunks} == {""}


def test_short_tail_is_merged_into_previous_chunk():
    readme = f"## A\n\n{paragraph(1100)}\n\n## B\n\n{paragraph(1200)}\n\n## Tail\n\nshort end"
    chunks = chunk_readme(readme, 1000, 2000)
    assert [chunk.title for chunk in chunks] == ["A", "B"]
    assert chunks[-1].text.endswith("## Tail\n\nshort end")


def test_short_tail_kept_alone_when_it_does_not_fit():
    readme = f"## A\n\n{paragraph(1990)}\n\n## Tail\n\nshort end"
    chunks = chunk_readme(readme, 1000, 2000)
    assert chunks[-1] == Section("Tail", "## Tail\n\nshort end")
    assert len(chunks) == 2


def test_huge_code_block_stays_whole():
    code = fence(200)
    assert len(code) > 2000
    chunks = chunk_readme(READMES["huge_code"], 1000, 2000)
    assert sum(code in chunk.text for chunk in chunks) == 1
    assert max(len(chunk.text) for chunk in chunks) > 2000  # the one allowed excess


def test_table_stays_whole():
    rows = table(60)
    chunks = chunk_readme(READMES["huge_table"], 1000, 2000)
    assert len(rows) > 2000
    assert sum(rows in chunk.text for chunk in chunks) == 1


def test_hash_inside_code_block_is_not_a_heading():
    readme = "# real\n\n```bash\n# not a heading\nls\n```\n\n~~~~\n## nor this\n~~~~\n\n## also real\n\ntext"
    assert [section.title for section in split_sections(readme)] == ["real", "also real"]


def test_longer_fence_needs_matching_closer():
    # A ```` fence is not closed by ```: the inner ``` and `# x` stay code.
    readme = "# a\n\n````md\n```\n# x\n```\n````\n\n# b"
    assert [section.title for section in split_sections(readme)] == ["a", "b"]


def test_unclosed_fence_does_not_swallow_later_headings():
    assert [section.title for section in split_sections(READMES["unclosed_fence"])] == ["rst-ish", "Still a heading"]


@pytest.mark.parametrize(
    "readme, titles",
    [
        ("# A\n\nx\n\n## B ##\n\ny\n\n###### F\n\nz", ["A", "B", "F"]),
        ("Title\n=====\n\nx\n\nSub\n---\n\ny", ["Title", "Sub"]),
        ("pre\n\n<h1 align='center'>Html <b>Name</b></h1>\n\nx", ["", "Html Name"]),
        ("#hashtag is text\n\n####### seven is text", [""]),
        ("- item\n---\n\nx", [""]),  # a list item over --- is not a setext heading
    ],
)
def test_heading_kinds(readme, titles):
    assert [section.title for section in split_sections(readme)] == titles


def test_unicode_titles_and_text():
    chunks = chunk_readme(READMES["unicode"], 10, 2000)
    assert chunks[0].title == "日本語 🚀"
    assert "✨" in chunks[-1].text


def test_inline_html_passes_through():
    readme = READMES["html"]
    chunks = chunk_readme(readme, 1000, 2000)
    assert chunks[0].text.startswith('<p align="center">\n  <img src="logo.png">\n</p>')
    assert "<details>\n<summary>More</summary>" in chunks[0].text
    assert "</details>" in "".join(chunk.text for chunk in chunks)


def test_crlf_is_normalized():
    assert chunk_readme(READMES["crlf"], 1000, 2000) == [Section("A", "# A\n\ntext one\n\n## B\n\ntext two")]


def test_front_matter_is_stripped():
    chunks = chunk_readme(READMES["front_matter"])
    assert chunks[0].title == "Real"
    assert "layout" not in chunks[0].text and chunks[0].text.startswith("# Real")


@pytest.mark.parametrize(
    "readme",
    [
        READMES["rule_first"],  # a horizontal rule above the introduction lost the whole introduction
        "---\n\n---\n\n# Title\n\nbody",  # nothing between the rules: no mapping
        "---\n- a list\n- not a mapping\n---\n\n# Title",
        "---\nkey: [unclosed\n---\n\n# Title",  # invalid YAML
        "---\nRead this first: it matters.\n---\n\n# Title",  # valid YAML, but prose: its key has spaces
        "---\n\nNo closing rule at all.\n\n# Title",
    ],
)
def test_opening_rule_that_is_not_a_yaml_mapping_is_kept(readme):
    assert normalize_readme(readme) == readme
    assert non_whitespace("".join(chunk.text for chunk in chunk_readme(readme, 10, 2000))) == non_whitespace(readme)


@pytest.mark.parametrize("closer", ["---", "...", "---  "])
def test_yaml_mapping_front_matter_is_stripped_with_either_closer(closer):
    assert normalize_readme(f"---\ntitle: x\ntags: [a, b]\n{closer}\n# Real\n") == "# Real\n"


def test_long_section_is_cut_between_paragraphs_within_max():
    chunks = chunk_readme(READMES["long_section"], 1000, 2000)
    assert all(len(chunk.text) <= 2000 for chunk in chunks)
    assert [chunk.title for chunk in chunks] == ["one"] * len(chunks)
    assert len(chunks) == 3  # 12 * 450 + 11 * 2 + 7 = 5429 chars, 4 paragraphs (1806) per chunk


def test_long_paragraph_is_cut_between_lines():
    chunks = chunk_readme(READMES["long_paragraph"], 1000, 2000)
    assert len(chunks) > 1 and all(len(chunk.text) <= 2000 for chunk in chunks)


def test_heading_stays_with_a_huge_following_block():
    readme = "## Options\n\n" + table(60)
    chunks = chunk_readme(readme, 1000, 2000)
    assert len(chunks) == 1 and chunks[0].title == "Options"


@pytest.mark.parametrize(
    "min_chars, max_chars, message",
    [(0, 2000, "min_chars must be > 0, got 0"), (-5, 10, "min_chars must be > 0, got -5"),
     (1000, 999, "max_chars must be >= min_chars (1000), got 999")],
)
def test_size_validation_names_field_and_value(min_chars, max_chars, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        chunk_readme("# x\n\ny", min_chars, max_chars)


def test_chunk_records_carries_repo_context():
    record = RepoRecord(
        repo_url="https://example.com/o/r", owner="o", repo="r", readme=READMES["sections"],
        file_tree=("r/__init__.py", "pyproject.toml"), key_files=(KeyFile(path="pyproject.toml", content="[p]"),),
        project_type="python_package", source="jsonl",
    )
    chunks = chunk_records([record], 1000, 2000)
    assert [chunk.chunk_index for chunk in chunks] == list(range(len(chunks)))
    assert len(chunks) > 1
    assert chunks[0].section_title == "Part 0"
    for chunk in chunks:
        assert (chunk.repo_url, chunk.repo, chunk.project_type) == ("https://example.com/o/r", "r", "python_package")
        assert chunk.file_tree == record.file_tree and chunk.key_files == record.key_files
