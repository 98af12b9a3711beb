"""List items a model repeats, runs off a template or makes up: what a reader deletes first.

A small model short of things to say fills a list by changing one word of the item before ("Detect spam mails
with attachments", "Detect spam mailings with attachments"), or runs a template down the list ("Support for
MySQL", "Support for PostgreSQL", ..., "Support for Joomla"; "Tested on Android.", "Tested on iOS.", ...). In
what a model wrote (`Evidence.model_text`), the grounding pass drops:
- an item that nearly repeats an earlier item of its list (`difflib` ratio of their words >= NEAR_DUPLICATE), or
  names the same feature in bold, or nearly ("2. **DOM**: a 4kb framework", "3. **DOM**: the root of a web page";
  "**Imprecable**", "**Imprecably**");
- in a run of TEMPLATE_MIN_ITEMS or more items of one list that open with the same two words, an item whose own
  words (those after the opening the run shares) are none of them in the repository's text;
- an item none of whose content words is in the repository's text: a feature list filled from what READMEs
  usually say ("Free to use", "Compatible with modern browsers") or from nowhere ("Username", "Password",
  "Gender" for a GitHub action that draws statistics). The project's own names are no support: for Spam-Detector,
  "Spam tagging" and "Spam cleanup" are judged by "tagging" and "cleanup", and an item that only names the
  project ("Spam Detector", "httpie-2.x", "httpie+.py") says nothing and goes too;
- an item that opens by naming code the repository's text never has: "`tronk`", "`Vhd` - Testing the `Vhd`
  library", "`NSGIF.dll`" (`invented_code_items`; a name the key files or the tree hold, `stronghold.py`, stays).

Only one-line items of prose are judged. An item with code or a link is the other rules' to judge (a list of the
project's commands is no template), and an item with lines under it keeps them.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict

from moxi_pipeline.readme import markdown
from moxi_pipeline.readme.words import content_words, plain_words

NEAR_DUPLICATE = 0.9  # "Service registration with customisation" / "Service Registration with Customization": 0.98
TEMPLATE_MIN_ITEMS = 3  # items opening with the same two words before their own words are judged
_ITEM = re.compile(r"^(\s*)([-*+]|\d+[.)])\s+(.*)$")
_LABEL = re.compile(r"^\*\*(.+?)\*\*")  # an item's bold name: "**DOM**: ..."
# an item opening with one name in code: "`tronk`", "`Vhd` - Testing ..." (a flag, "`--help`", is no name)
_CODE_NAME = re.compile(r"^`([A-Za-z_.][^`\s]*)`")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _one_line(lines: list[str], index: int) -> bool:
    """The item at `index` has nothing under it: the next non-blank line is neither indented past its mark nor a
    lazy continuation of its text."""
    indent = _indent(lines[index])
    following = index + 1
    while following < len(lines) and not lines[following].strip():
        following += 1
    if following == len(lines):
        return True
    if following == index + 1 and not _ITEM.match(lines[following]):
        return False  # "- item" then "goes on here": one paragraph
    return _indent(lines[following]) <= indent


def _lists(text: str) -> list[list[tuple[int, int, list[str], str]]]:
    """The README's lists outside code: (line index, indentation, words, bold name's words) of each one-line
    prose item."""
    lines = text.split("\n")
    code = {i for block in markdown.code_blocks(text) for i in range(block.start, block.end)}
    found, current = [], []
    for index, line in enumerate(lines):
        match = None if index in code else _ITEM.match(line)
        if match:
            body = match.group(3)
            if "`" not in body and "](" not in body and "://" not in body and _one_line(lines, index):
                label = _LABEL.match(body)
                current.append((index, len(match.group(1)), plain_words(body).split(),
                                plain_words(label.group(1)) if label else ""))
        elif index in code or line.lstrip().startswith("#") or (line.strip() and not line[:1].isspace()):
            if current:
                found.append(current)
            current = []
    if current:
        found.append(current)
    return found


def _near(said: str, others: list[str]) -> bool:
    return any(difflib.SequenceMatcher(None, said, other).ratio() >= NEAR_DUPLICATE for other in others)


def _shared_opening(words: list[list[str]]) -> int:
    size = 0
    while all(len(w) > size for w in words) and len({w[size] for w in words}) == 1:
        size += 1
    return size


def filler_items(text: str, mentions, names: frozenset[str] = frozenset()) -> set[int]:
    """Line indices of the items to drop; `mentions(word)` says whether the repository's text has a word, `names`
    are the words of the project's own names (`words.project_names`)."""
    drop: set[int] = set()
    for items in _lists(text):
        kept: list[tuple[int, str, str]] = []  # (indent, words, bold name) of the items kept so far
        for index, indent, words, label in items:
            said = " ".join(words)
            level = [(other, other_label) for other_indent, other, other_label in kept if other_indent == indent]
            if (label and _near(label, [other_label for _, other_label in level])) or (
                    len(words) >= 2 and _near(said, [other for other, _ in level])):
                drop.add(index)
            else:
                kept.append((indent, said, label))
        runs: dict[tuple, list[tuple[int, list[str]]]] = defaultdict(list)
        repeats = set(drop)
        for index, indent, words, _ in items:
            if len(words) >= 3 and index not in repeats:
                runs[(indent, *words[:2])].append((index, words))
            said = " ".join(words)
            if (own := content_words(said, names)) and not any(map(mentions, own)):
                drop.add(index)
            elif not own and content_words(said):  # only the project's names
                drop.add(index)
        for run in runs.values():
            if len(run) < TEMPLATE_MIN_ITEMS:
                continue
            opening = _shared_opening([words for _, words in run])
            for index, words in run:
                own = content_words(" ".join(words[opening:]), names)
                if own and not any(map(mentions, own)):
                    drop.add(index)
    return drop


def invented_code_items(text: str, has_text) -> set[int]:
    """Line indices of the one-line items (outside code) that open with a name in code the repository lacks;
    `has_text(name)` says whether the repository's text holds the name."""
    lines = text.split("\n")
    code = markdown.fenced_lines(lines)
    drop = set()
    for index, line in enumerate(lines):
        item = None if index in code else _ITEM.match(line)
        name = _CODE_NAME.match(item.group(3)) if item else None
        if name and not has_text(name.group(1).strip(".:,")) and _one_line(lines, index):
            drop.add(index)
    return drop
