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
    start: int  # first line (the opening fence, or an indented block's first line)
    end: int  # one past the last line (the closing fence, when the block has one)
    fenced: bool = True  # False: indented code, every line is content


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
            blocks.append(CodeBlock(token.info.strip(), token.content, token.map[0], token.map[1], token.type == "fence"))
    return blocks


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


@dataclass(frozen=True)
class Block:
    start: int  # first line
    end: int  # one past the last line
    kind: str  # "heading", "code", "table" or "text"
    title: str = ""  # a heading's text


_OPENERS = {"heading_open": "heading", "table_open": "table", "paragraph_open": "text", "bullet_list_open": "text",
            "ordered_list_open": "text", "blockquote_open": "text", "fence": "code", "code_block": "code",
            "html_block": "text", "hr": "text"}


def blocks(lines: list[str], offset: int = 0) -> list[Block]:
    """The top-level blocks of a document, by line range, covering every non-blank line.

    Two departures from CommonMark, both so that a chunker never loses structure: a fence that never
    closes is a line of text (CommonMark runs it to the end of the document, swallowing every later
    heading; an RST underline `~~~~` is the usual culprit), and a line no block claims (a link
    reference definition) is a text block of its own. A single-line `<hN>` HTML block is a heading.
    """
    stream = tokens("\n".join(lines[offset:]))
    found: list[Block] = []
    for index, token in enumerate(stream):
        if token.level != 0 or token.type not in _OPENERS or not token.map:
            continue
        start, end = token.map[0] + offset, token.map[1] + offset
        kind = _OPENERS[token.type]
        if token.type == "fence" and not (end - start > 1 and closes_fence(lines[end - 1], token.markup)):
            return found + [Block(start, start + 1, "text")] + blocks(lines, start + 1)
        title = ""
        if kind == "heading":
            title = _inline_text(stream[index + 1])
        elif token.type == "html_block" and end - start == 1 and (html := _HTML_HEADING.fullmatch(lines[start].strip())):
            kind, title = "heading", _TAG.sub("", html.group(2)).strip()
        found.append(Block(start, end, kind, title))
    return _fill_gaps(found, lines, offset)


def _fill_gaps(found: list[Block], lines: list[str], offset: int) -> list[Block]:
    covered = {line for block in found for line in range(block.start, block.end)}
    extra = [Block(i, i + 1, "text") for i in range(offset, len(lines)) if i not in covered and lines[i].strip()]
    return sorted(found + extra, key=lambda block: block.start)



# a fenced block's info strings that mean shell: its lines are commands a reader types
SHELL_INFOS = frozenset(
    {"", "bash", "sh", "shell", "console", "zsh", "shell-session", "terminal", "cmd", "powershell", "ps"}
)
_ITEM = re.compile(r"^(\s*)([-*+]|\d+[.)])([ \t]+)(\S.*)$")
_FENCE_LINE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")


def fence_pairs(lines: list[str]) -> list[tuple[int, int | None]]:
    """Each fenced block as (opening line, closing line or None when it runs to the end), by CommonMark's rule:
    a fence closes only on the opener's character, at least as long, with nothing after it. So "```" then
    "```bash" are a close and a new opening, never one empty block."""
    pairs: list[tuple[int, int | None]] = []
    opened: tuple[int, str, int] | None = None  # (line, marker, indent)
    for index, line in enumerate(lines):
        match = _FENCE_LINE.match(line)
        if match is None:
            continue
        if opened is None:
            opened = (index, match.group(2), len(match.group(1)))
        elif closes_fence(line, opened[1], opened[2]):
            pairs.append((opened[0], index))
            opened = None
    return pairs + ([(opened[0], None)] if opened is not None else [])


def fenced_lines(lines: list[str]) -> set[int]:
    """Indices of the lines inside fenced blocks, fences included; an unclosed block runs to the end."""
    return {i for start, end in fence_pairs(lines) for i in range(start, len(lines) if end is None else end + 1)}


def closes_fence(line: str, marker: str, opener_indent: int = 0) -> bool:
    """CommonMark: a closing fence is the opener's character, at least as long, with no info string, indented
    at most 3 spaces (here: past the opener's own indent, which inside a list item is the item's text column);
    "       ```" under a fence at the margin is a code line, and the block runs on over the headings below."""
    fence = line.strip()
    indent = len(line) - len(line.lstrip())
    return set(fence) == {marker[0]} and len(fence) >= len(marker) and indent <= opener_indent + 3


def layout(text: str) -> str:
    """Markdown that renders and lints clean, with no word changed (`moxi generate`'s last step, after the
    grounding pass): one space after a list marker; a blank line around each fenced block and each list; one
    bullet marker for the items of one level of a list ("- a" then "* b" is two lists); each ordered list
    numbered 1, 2, 3 (a list the grounding pass took an item from ran 1, 3, or opened at 2); a nested list
    indented to its parent item's text; and two things a small model writes that end a list it
    meant to continue, moved into the item: a bullet right under a numbered item at the margin ("1. **Name**:"
    then "- what it does"), a code block at the margin between two items, and a paragraph at the margin
    between two items or going on an item's sentence (opening in lower case)."""
    lines = text.split("\n")
    pairs = fence_pairs(lines)
    ends = {start: (len(lines) - 1 if end is None else end) for start, end in pairs}
    closes = {end for _, end in pairs if end is not None}
    code = {i for start, end in ends.items() for i in range(start, end + 1)}
    out: list[str] = []
    counters: dict[int, int] = {}  # an ordered list's indent -> its next number
    bullets: dict[int, str] = {}  # a bullet list's indent -> its marker: "- a" then "* b" would end the list
    stack: list[tuple[int, int, int]] = []  # the open items: (indent as written, indent now, marker width)
    nesting = False  # the last top-level item is numbered: a bullet right under it belongs to it
    shift = 0  # columns added to (or taken from) the lines of the code block being copied
    top_ordered: bool | None = None  # the kind of the last top-level item
    block_indent = 0  # the indent of the code block being copied, as written out

    def blank_before() -> None:
        if out and out[-1].strip():
            out.append("")

    def moved(indent: int) -> int:
        """How far a line indented `indent` moves: as far as the innermost open item it belongs to."""
        return next((now - was for was, now, _ in reversed(stack) if was < indent), 0)

    carried = False  # the paragraph being copied was moved into the item above
    for index, line in enumerate(lines):
        carried = carried and bool(line.strip()) and not _ITEM.match(line) and index not in code and not (
            line.lstrip().startswith(("#", "|", ">", "<")))
        if index in code:
            if index in ends:
                blank_before()
                # the next line at the margin: lines indented under the item ("   This installs it.") go on it
                following = next((l for l in lines[ends[index] + 1 :] if l.strip() and not _indent(l)), "")
                between_items = _ITEM.match(following) and not _indent(following) and stack and not stack[0][0]
                shift = stack[0][1] + stack[0][2] if between_items and not _indent(line) else moved(_indent(line))
            written = _reindent(line, shift) if line.strip() else line
            if index in ends:
                block_indent = _indent(written)
            elif written.strip():
                # code under an indented fence (inside a list item) keeps at least the fence's indent: a line
                # left of it would end the item, and the block, mid-code
                written = " " * max(0, block_indent - _indent(written)) + written
            out.append(written)
            if index in closes and index + 1 < len(lines) and lines[index + 1].strip():
                out.append("")
            continue
        item = _ITEM.match(line)
        if item:
            indent, marker, _, rest = item.groups()
            was = len(indent)
            if not was and not marker[0].isdigit() and nesting and out and out[-1].strip():
                parent = stack[0]
                stack, was, now = [parent], parent[0], parent[1] + parent[2]
            else:
                while stack and stack[-1][0] >= was:
                    stack.pop()
                now = stack[-1][1] + stack[-1][2] if stack else (0 if was < 4 else was)
                if not now:
                    nesting = marker[0].isdigit()
            counters = {i: n for i, n in counters.items() if i <= now}
            bullets = {i: b for i, b in bullets.items() if i <= now}
            if marker[0].isdigit():
                number = counters.get(now, 1)
                counters[now] = number + 1
                marker = f"{number}{marker[-1]}"
            else:
                counters.pop(now, None)
                marker = bullets.setdefault(now, marker)
            if not stack and not now:
                if not _in_list(out) or top_ordered != marker[0].isdigit():  # a new list, or one of another kind
                    blank_before()
                top_ordered = marker[0].isdigit()
            stack.append((was, now, len(marker) + 1))
            out.append(f"{' ' * now}{marker} {rest}")
        elif line.strip() and not line[:1].isspace() and stack and not line.startswith(("#", "|", ">", "<")) and (
            carried or _between_items(lines, index, code, top_ordered) or line[:1].islower()
        ):
            # a paragraph at the margin that goes on the item above: between two items of one list ("1. **A**:
            # ...", a paragraph on A, "2. **B**": else a list, a paragraph and a new list), or one that goes
            # on its sentence ("... for building" then "the same tools.")
            parent = stack[0]
            stack, carried = [parent], True
            out.append(" " * (parent[1] + parent[2]) + line)
        elif line.strip() and not line[:1].isspace():  # a paragraph, heading or table at the margin ends a list
            if stack:
                blank_before()
            counters, bullets, stack, nesting = {}, {}, [], False
            out.append(line)
        else:
            out.append(_reindent(line, moved(_indent(line))) if line.strip() else line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out))


def _between_items(lines: list[str], index: int, code: set[int], ordered: bool | None) -> bool:
    """Line `index` opens or goes on a paragraph (no heading, table, quote or HTML) that the next item at the
    margin of the same kind follows, after blank lines only."""
    at = index
    while at < len(lines) and lines[at].strip() and not _ITEM.match(lines[at]):
        if at in code or lines[at].lstrip().startswith(("#", "|", ">", "<")):
            return False
        at += 1
    while at < len(lines) and not lines[at].strip():
        at += 1
    item = _ITEM.match(lines[at]) if at < len(lines) and at not in code else None
    return bool(item) and not item.group(1) and item.group(2)[0].isdigit() == ordered


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _reindent(line: str, shift: int) -> str:
    return " " * shift + line if shift >= 0 else line[min(-shift, _indent(line)) :]


def _in_list(out: list[str]) -> bool:
    """The nearest line above at the margin (blank lines aside) is a list item: the list goes on."""
    for line in reversed(out):
        if line.strip() and not line[:1].isspace():
            return bool(_ITEM.match(line))
    return False
