"""Markdown-aware README chunking.

A README is cut into blocks (headings, fenced code, tables, paragraphs; `markdown.blocks`, the project's one
CommonMark parser, shared with the outline, the grounding pass and the metrics), the blocks are grouped into
sections at headings, and sections are packed into chunks of about `min_chars`..`max_chars`:

1. A section that fits in `max_chars` stays whole. A longer one is cut between blocks (greedily, up to
   `max_chars`); a text block longer than `max_chars` is cut between lines. Fenced code blocks and
   tables are never cut: one longer than `max_chars` becomes a chunk of its own, the one case a chunk
   passes `max_chars`.
2. Pieces are packed in order while the chunk is under `min_chars` and the next piece still fits, so a
   chunk ends at a section boundary as soon as it is big enough (its instruction names its first section,
   and fewer extra sections ride along).
3. A chunk still under `min_chars` (typically the README's tail) is merged into the previous chunk when
   the two fit in `max_chars`, and otherwise kept alone. Nothing is ever dropped: every chunk is an exact
   slice of the README, and the slices cover every non-blank line, in order.

Front matter is metadata, not README prose, and is removed: a `---` first line, a closing `---` or
`...` line, and between them text that parses as a YAML mapping whose keys are single words
(`title: x`, `layout: page`). Anything else that opens with `---` is README text and stays: a
horizontal rule above the introduction, even one line of prose such as "Welcome: it renames files."
(a valid YAML mapping, but its key has spaces; a front matter key never does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from moxi_pipeline.readme import markdown
from moxi_pipeline.readme.markdown import Block
from moxi_pipeline.records import ReadmeChunk, RepoRecord

_FRONT_MATTER_OPEN = re.compile(r"---[ \t]*")
_FRONT_MATTER_CLOSE = re.compile(r"(---|\.\.\.)[ \t]*")


@dataclass(frozen=True)
class Section:
    title: str
    text: str


def normalize_readme(readme: str) -> str:
    """CRLF/CR -> LF, drop a byte-order mark and YAML front matter (only a mapping: see the module doc)."""
    lines = readme.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").split("\n")
    return "\n".join(lines[_front_matter_end(lines):])


def _front_matter_end(lines: list[str]) -> int:
    """Index of the first line after YAML front matter, 0 when the README has none."""
    if not _FRONT_MATTER_OPEN.fullmatch(lines[0]):
        return 0
    closer = next((i for i in range(1, len(lines)) if _FRONT_MATTER_CLOSE.fullmatch(lines[i])), None)
    if closer is None:
        return 0
    try:
        metadata = yaml.safe_load("\n".join(lines[1:closer]))
    except yaml.YAMLError:  # prose between two rules is rarely valid YAML
        return 0
    is_front_matter = isinstance(metadata, dict) and metadata and all(
        isinstance(key, str) and key and not any(c.isspace() for c in key) for key in metadata
    )
    return closer + 1 if is_front_matter else 0


def _group_sections(blocks: list[Block]) -> list[tuple[str, list[Block]]]:
    """A heading opens a section; blocks before the first heading are the untitled preamble."""
    sections: list[tuple[str, list[Block]]] = []
    for block in blocks:
        if block.kind == "heading" or not sections:
            sections.append((block.title if block.kind == "heading" else "", []))
        sections[-1][1].append(block)
    return sections


def split_sections(readme: str) -> list[Section]:
    """The README's sections at ATX, setext and single-line `<hN>` headings, each with its heading line."""
    lines = normalize_readme(readme).split("\n")
    sections = _group_sections(markdown.blocks(lines))
    return [Section(title, "\n".join(lines[blocks[0].start : blocks[-1].end])) for title, blocks in sections]


class _Text:
    """Character counts of line slices, so packing never rebuilds strings to measure them."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.offsets = [0]
        for line in lines:
            self.offsets.append(self.offsets[-1] + len(line) + 1)

    def chars(self, start: int, end: int) -> int:
        return self.offsets[end] - self.offsets[start] - 1  # no newline after the last line

    def slice(self, start: int, end: int) -> str:
        return "\n".join(self.lines[start:end])


def _split_long_text(block: Block, text: _Text, max_chars: int) -> list[Block]:
    """A paragraph longer than max_chars, cut between lines; a single huge line stays whole."""
    pieces, start = [], block.start
    for line in range(block.start + 1, block.end):
        if text.chars(start, line + 1) > max_chars:
            pieces.append(Block(start, line, block.kind))
            start = line
    pieces.append(Block(start, block.end, block.kind))
    return pieces


def _section_pieces(blocks: list[Block], text: _Text, max_chars: int) -> list[tuple[int, int]]:
    """(start, end) line ranges: the whole section if it fits, else greedy runs of blocks."""
    if text.chars(blocks[0].start, blocks[-1].end) <= max_chars:
        return [(blocks[0].start, blocks[-1].end)]
    units = []
    for block in blocks:
        too_long = text.chars(block.start, block.end) > max_chars
        units.extend(_split_long_text(block, text, max_chars) if too_long and block.kind == "text" else [block])
    pieces = [(units[0].start, units[0].end)]
    for unit in units[1:]:
        # A heading never ends a piece alone: it goes with its first block even when that block is huge.
        heading_alone = pieces[-1] == (units[0].start, units[0].end) and units[0].kind == "heading"
        if heading_alone or text.chars(pieces[-1][0], unit.end) <= max_chars:
            pieces[-1] = (pieces[-1][0], unit.end)
        else:
            pieces.append((unit.start, unit.end))
    return pieces


def _pack(pieces: list[tuple[str, int, int]], text: _Text, min_chars: int, max_chars: int):
    """Pack (title, start, end) pieces: grow while under min_chars, then merge short chunks backwards."""
    chunks = [pieces[0]]
    for title, start, end in pieces[1:]:
        first_title, chunk_start, _ = chunks[-1]
        if text.chars(*chunks[-1][1:]) < min_chars and text.chars(chunk_start, end) <= max_chars:
            chunks[-1] = (first_title, chunk_start, end)
        else:
            chunks.append((title, start, end))
    merged = [chunks[0]]
    for title, start, end in chunks[1:]:
        first_title, previous_start, _ = merged[-1]
        if text.chars(start, end) < min_chars and text.chars(previous_start, end) <= max_chars:
            merged[-1] = (first_title, previous_start, end)
        else:
            merged.append((title, start, end))
    return merged


def validate_chunk_sizes(min_chars: int, max_chars: int) -> None:
    if min_chars <= 0:
        raise ValueError(f"min_chars must be > 0, got {min_chars}")
    if max_chars < min_chars:
        raise ValueError(f"max_chars must be >= min_chars ({min_chars}), got {max_chars}")


def chunk_readme(readme: str, min_chars: int = 1000, max_chars: int = 2000) -> list[Section]:
    """Chunks of the README; each Section's title is the heading of its first section ("" for a preamble)."""
    validate_chunk_sizes(min_chars, max_chars)
    text = _Text(normalize_readme(readme).split("\n"))
    blocks = markdown.blocks(text.lines)
    if not blocks:
        return []
    pieces = [
        (title, start, end)
        for title, section_blocks in _group_sections(blocks)
        for start, end in _section_pieces(section_blocks, text, max_chars)
    ]
    return [Section(title, text.slice(start, end)) for title, start, end in _pack(pieces, text, min_chars, max_chars)]


def chunk_records(records: list[RepoRecord], min_chars: int = 1000, max_chars: int = 2000) -> list[ReadmeChunk]:
    """Every record's README as chunks that carry the repository's context for the prompt."""
    validate_chunk_sizes(min_chars, max_chars)
    chunks = []
    for record in records:
        for index, section in enumerate(chunk_readme(record.readme, min_chars, max_chars)):
            chunks.append(
                ReadmeChunk(
                    repo_url=record.repo_url,
                    repo=record.repo,
                    chunk_index=index,
                    section_title=section.title,
                    content=section.text,
                    file_tree=record.file_tree,
                    key_files=record.key_files,
                    project_type=record.project_type,
                )
            )
    return chunks
