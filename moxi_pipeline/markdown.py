"""One CommonMark parser (markdown-it-py, with tables) for everything that reads Markdown structure:
the outline's headings, the grounding pass's links and code, and the evaluation's section metrics.

Every helper works on the token stream, so a `#` inside a fenced block is never a heading and a URL
inside inline code is still found. Line numbers are 0-based, from markdown-it's block line maps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Single-line HTML headings (`<h1 align="center">Name</h1>`), which many GitHub READMEs open with.
_HTML_HEADING = re.compile(r"<h([1-6])[^>]*>(.*?)</h\1>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
# Bare URLs in prose (no linkify plugin): scheme or www., up to whitespace or a closing bracket/quote.
BARE_URL = re.compile(r"(?:https?|ftp)://[^\s<>\"'`)\]]+|www\.[^\s<>\"'`)\]]+")


@dataclass(frozen=True)
class Heading:
    level: int
    title: str
    line: int  # first line of the heading


@dataclass(frozen=True)
class CodeBlock:
    info: str  # the fence's info string ("bash", "python", "" for indented code)
    content: str
    start: int  # first line (the opening fence)
    end: int  # one past the last line (the closing fence)


@lru_cache(maxsize=1)
def _parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table")


def tokens(text: str) -> list:
    return _parser().parse(text)


def _inline_text(token) -> str:
    """Plain text of an inline token: text and code children, markup dropped."""
    parts = [child.content for child in token.children or () if child.type in ("text", "code_inline")]
    return "".join(parts).strip()


def headings(text: str) -> list[Heading]:
    """ATX, setext and HTML (`<hN>`) headings in document order."""
    stream = tokens(text)
    found = []
    for index, token in enumerate(stream):
        if token.type == "heading_open":
            found.append(Heading(int(token.tag[1]), _inline_text(stream[index + 1]), token.map[0]))
        elif token.type in ("html_block", "inline") and "<h" in token.content.lower():
            line = token.map[0] if token.map else 0
            for level, body in _HTML_HEADING.findall(token.content):
                found.append(Heading(int(level), _TAG.sub("", body).strip(), line))
    return sorted(found, key=lambda heading: heading.line)


def code_blocks(text: str) -> list[CodeBlock]:
    """Fenced and indented code blocks with their line ranges."""
    blocks = []
    for token in tokens(text):
        if token.type in ("fence", "code_block") and token.map:
            blocks.append(CodeBlock(token.info.strip(), token.content, token.map[0], token.map[1]))
    return blocks


def inline_code(text: str) -> list[str]:
    """The contents of every `code span`, in order."""
    spans = []
    for token in tokens(text):
        if token.type == "inline":
            spans += [child.content for child in token.children or () if child.type == "code_inline"]
    return spans


def urls(text: str) -> list[str]:
    """Every URL: link targets, image sources, autolinks, bare URLs in prose, HTML src/href, and URLs
    inside code; in document order, duplicates kept (the caller counts)."""
    found = []
    for token in tokens(text):
        if token.type == "inline":
            for child in token.children or ():
                if child.type in ("link_open", "image"):
                    target = child.attrs.get("href") or child.attrs.get("src") or ""
                    if "://" in target or target.startswith("www."):
                        found.append(target)
                elif child.type in ("text", "code_inline", "html_inline"):
                    found += BARE_URL.findall(child.content)
        elif token.type in ("fence", "code_block", "html_block"):
            found += BARE_URL.findall(token.content)
    return [url.rstrip(".,;:!?") for url in found]
