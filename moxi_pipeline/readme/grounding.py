"""The grounding pass: a README states only what the repository supports.

`ground_readme` removes, and counts per README:
- a path that is not in the file tree (the sentence, list item or code line that names it);
- a URL found nowhere in the repository (manifests, key files, tree) unless it is built from facts
  (the repository's own pages, its package's registry page): a link keeps its text, an image goes;
- a shell command that the facts do not support: an install or run command for another package or
  ecosystem, `sudo`, `rm -rf`, `curl | sh`. Commands the facts give, CLI invocations of the repository's
  own commands, and lines found verbatim in a key file are kept;
- an in-page link whose `#anchor` matches no heading of the README (the link keeps its text);
- in what a model wrote, a list item that nearly repeats another, or runs a template down a list and names
  nothing the repository has (`lists.py`).

What counts as evidence, and each check (`file_mentions`, `unknown_paths`, `Evidence.url_allowed`,
`Evidence.command_allowed`), lives in `evidence.py`: the evaluation's trust metrics count the same checks, so
a grounded README scores what the pass guarantees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from moxi_pipeline.readme import markdown
from moxi_pipeline.readme.lists import filler_items, invented_code_items
from moxi_pipeline.readme.evidence import (
    CODE_SPAN,
    COMMAND_WORDS,
    LINK,
    SPACED_ANCHOR,
    Evidence,
    heading_anchors,
    pipes_into_tool,
    runs_tool,
    unknown_paths,
)

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_LIST_ITEM = re.compile(r"^\s*([-*+]|\d+[.)])\s")
# what a line ending in ':' may introduce: a fence, a list, a table, indented code or a quote
_BLOCK_START = re.compile(r"^(\s*(```|~~~|[-*+]\s|\d+[.)]\s|\||>)|\s{4,}\S)")


@dataclass
class GroundingReport:
    KINDS: ClassVar[tuple[str, ...]] = ("paths", "urls", "commands", "anchors", "items")  # what is counted

    paths: int = 0
    urls: int = 0
    commands: int = 0
    anchors: int = 0  # in-page links to a heading the README does not have
    items: int = 0  # list items repeated, run off a template or unfounded (`lists.py`)
    removed: list[str] = field(default_factory=list)

    def total(self) -> int:
        return sum(getattr(self, kind) for kind in self.KINDS)

    def add(self, other: GroundingReport) -> None:
        """Count `other`'s removals in this report too."""
        for kind in self.KINDS:
            setattr(self, kind, getattr(self, kind) + getattr(other, kind))
        self.removed += other.removed


def _fix_links(line: str, evidence: Evidence, report: GroundingReport, anchors: set[str]) -> str:
    def replace(match: re.Match) -> str:
        bang, text, target = match.groups()
        is_url = "://" in target or target.startswith("www.")
        in_page = target.startswith("#")
        local = target.split("#")[0].removeprefix("./").strip("/")
        if is_url:
            ok = evidence.url_allowed(target)
        else:
            ok = target[1:].lower() in anchors if in_page else local in evidence.known
        if ok:
            return match.group(0)
        if is_url:
            report.urls += 1
        elif in_page:
            report.anchors += 1
        else:
            report.paths += 1
        report.removed.append(target)
        return "" if bang else text

    def unlink(match: re.Match) -> str:
        report.anchors += 1
        report.removed.append(match.group(2))
        return match.group(1)

    return LINK.sub(replace, SPACED_ANCHOR.sub(unlink, line))


def _sentence_problems(sentence: str, evidence: Evidence, report: GroundingReport) -> bool:
    """True (and counted) when the sentence names an unknown path, an invented URL or an unsupported command."""
    bad_urls = [u for u in markdown.BARE_URL.findall(sentence) if not evidence.url_allowed(u.rstrip(".,;:!?"))]
    bad_paths = unknown_paths(sentence, evidence.known)
    bad_commands = [span for span in CODE_SPAN.findall(sentence)
                    if evidence.is_command(span) and not evidence.command_allowed(span)]
    report.urls += len(bad_urls)
    report.paths += len(bad_paths)
    report.commands += len(bad_commands)
    report.removed += [*bad_urls, *sorted(bad_paths), *bad_commands]
    return bool(bad_urls or bad_paths or bad_commands)


def _ground_prose(line: str, evidence: Evidence, report: GroundingReport, anchors: set[str]) -> str | None:
    line = _fix_links(line, evidence, report, anchors)
    bare = _LIST_ITEM.sub("", line).strip().strip("`").removeprefix("$ ")
    runs_tool = bare.split() and (bare.split()[0] in COMMAND_WORDS or pipes_into_tool(bare))
    if runs_tool and not evidence.command_allowed(bare):
        report.commands += 1  # a command written as prose ("pip install x" on a line of its own)
        report.removed.append(bare)
        return None
    if _LIST_ITEM.match(line) or line.lstrip().startswith("#"):
        return None if _sentence_problems(line, evidence, report) else line
    kept = [s for s in _SENTENCE.split(line) if not _sentence_problems(s, evidence, report)]
    return " ".join(kept) if kept else None


# a fence's info string as a reader's renderer uses it: one language name ("bash", "c++", "objective-c")
_LANGUAGE = re.compile(r"[A-Za-z][\w+#-]{0,24}")
_FENCE_OPEN = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")


def _ground_info(line: str, evidence: Evidence, report: GroundingReport) -> str:
    """An opening fence keeps a language name only: anything else after the backticks (a file name, a
    command, stray words) is dropped, and an unknown path among it is counted as removed."""
    match = _FENCE_OPEN.match(line)
    if not match:
        return line
    indent, marker, info = match.groups()
    words = info.split()
    language = words[0] if words and _LANGUAGE.fullmatch(words[0]) else ""
    if info.strip() == language:
        return line
    bad = unknown_paths(info, evidence.known)
    report.paths += len(bad)
    report.removed += sorted(bad)
    return f"{indent}{marker}{language}"


def _ground_code(lines: list[str], info: str, evidence: Evidence, report: GroundingReport) -> list[str]:
    shell = info.split()[0].lower() in markdown.SHELL_INFOS if info.split() else True
    kept = []
    for line in lines:
        # in any other fence too, a line that runs a tool or the project by its name (`pip install -r x` or
        # `spam_detector <path> -c x` in a ```python3 block) is a command line, not code
        if (shell or runs_tool(line) or evidence.runs_own_name(line)) and not evidence.command_allowed(line):
            report.commands += 1
            report.removed.append(line.strip())
        elif (bad := unknown_paths(line, evidence.known)) or any(
            not evidence.url_allowed(u) for u in markdown.BARE_URL.findall(line)
        ):
            report.paths += len(bad)
            report.urls += len([u for u in markdown.BARE_URL.findall(line) if not evidence.url_allowed(u)])
            report.removed.append(line.strip())
        else:
            kept.append(line)
    return kept


def ground_readme(
    text: str, evidence: Evidence, max_passes: int = 3, anchors: set[str] | None = None,
) -> tuple[str, GroundingReport]:
    """The README with ungrounded paths, URLs, commands and in-page links removed, and what was removed.

    `anchors`: the `#anchors` an in-page link may target, when `text` is one part of a README (a section
    added to an existing one); by default, those of `text`'s own headings.
    Repeated until a pass removes nothing: tidying a broken fence can turn code into prose, and a
    line the first pass read as code must still be judged as prose."""
    report = GroundingReport()
    for _ in range(max_passes):
        before = report.total()
        # list items first, on every pass: an item whose code a pass cut ("**Run the `phis` command**") is prose now
        text = _drop_list_items(text, evidence, report) if evidence.model_text else text
        text = _ground_once(text, evidence, report, anchors)
        if report.total() == before:
            break
    return text, report


def _drop_list_items(text: str, evidence: Evidence, report: GroundingReport) -> str:
    """`lists.py`'s repeated, templated, unfounded and invented-code items, dropped and counted."""
    lines = text.split("\n")
    drop = filler_items(text, evidence.mentions, evidence.names) | invented_code_items(text, evidence.has_text)
    report.items += len(drop)
    report.removed += [lines[index].strip() for index in sorted(drop)]
    return "\n".join(line for index, line in enumerate(lines) if index not in drop)


def _ground_once(text: str, evidence: Evidence, report: GroundingReport, anchors: set[str] | None = None) -> str:
    lines = text.split("\n")
    blocks = {block.start: block for block in markdown.code_blocks(text) if block.info or lines[block.start].lstrip().startswith(("`", "~"))}
    anchors = heading_anchors(text) if anchors is None else anchors
    out: list[str] = []
    index = 0
    while index < len(lines):
        if index in blocks:
            block = blocks[index]
            # Only fence lines are exempt: an indented block ("    ```python" included) is all content, and
            # an unclosed fence runs to the end of the text, its last line content too.
            first = block.start + 1 if block.fenced else block.start
            end = min(block.end, len(lines))  # markdown-it may map a block one line past the text
            closed = block.fenced and end - 1 > block.start and _is_fence(lines[end - 1])
            last = end - 1 if closed else end
            body = _ground_code(lines[first:last], block.info, evidence, report)
            if any(line.strip() not in ("", "#", "$", "//", ">") for line in body):  # a lone prompt sign is no code
                opening = [_ground_info(line, evidence, report) for line in lines[block.start:first]]
                out += [*opening, *body, *lines[last:end]]
            index = block.end
            continue
        grounded = _ground_prose(lines[index], evidence, report, anchors) if lines[index].strip() else lines[index]
        if grounded is not None:
            out.append(grounded)
        index += 1
    return tidy("\n".join(out), model_text=evidence.model_text)


def _level(line: str) -> int:
    """A heading's level; 7 for anything that is not a heading."""
    match = re.match(r"^(#{1,6})\s", line.lstrip())
    return len(match.group(1)) if match else 7


def _is_fence(line: str) -> bool:
    return line.strip().startswith(("```", "~~~"))


def _drop_empty_fences(lines: list[str]) -> list[str]:
    """A fenced block with nothing but blank lines inside is empty: its fence lines and blank lines go."""
    empty = set()
    for start, end in markdown.fence_pairs(lines):
        if end is not None and not any(line.strip() for line in lines[start + 1 : end]):
            empty.update(range(start, end + 1))
    return [line for index, line in enumerate(lines) if index not in empty]


_BARE_HEADING = re.compile(r"\s{0,3}#{1,6}\s*")


def _lead_in_item(line: str, following: str) -> bool:
    """A list item ending in ':' with the next item of its list, or one above it, right under it: what it
    introduced was removed ("1. Install the project:" over "2. Run the script ...")."""
    return bool(_LIST_ITEM.match(line) and _LIST_ITEM.match(following)
                and len(following) - len(following.lstrip()) <= len(line) - len(line.lstrip()))


def tidy(text: str, model_text: bool = False) -> str:
    """What removals leave behind: a line ending in ':' that now introduces nothing, an empty list item,
    a heading with nothing under it or no words in it, an unclosed fence's opening line, runs of blank lines
    (repeated until stable). In what a model wrote (`model_text`), a list item ending in ':' over the next item
    of its list introduces nothing too (`_lead_in_item`)."""
    lines = text.split("\n")
    unclosed = [start for start, end in markdown.fence_pairs(lines) if end is None]
    if unclosed:
        del lines[unclosed[0]]
    while True:
        lines = _drop_empty_fences(lines)
        in_code = markdown.fenced_lines(lines)
        kept: list[str] = []
        for index, line in enumerate(lines):
            if index not in in_code and _BARE_HEADING.fullmatch(line):
                continue  # "#" alone: a heading with no words (what is left when grounding took its text)
            following = next((l for l in lines[index + 1 :] if l.strip()), "")
            introduces_nothing = line.rstrip().endswith(":") and (
                not _BLOCK_START.match(following) or (model_text and _lead_in_item(line, following)))
            empty_section = index > 0 and _level(line) < 7 and (not following or _level(following) <= _level(line))
            markup_only = _LIST_ITEM.match(line) and not re.search(r"[^\W_]", _LIST_ITEM.sub("", line))
            if not (introduces_nothing or empty_section or markup_only or re.fullmatch(r"\s*([-*+]|\d+[.)])\s*", line)):
                kept.append(line)
        if kept == lines:
            return re.sub(r"\n{3,}", "\n\n", "\n".join(kept))
        lines = kept
