"""Content words: what a sentence says, for checking it against the repository's own text.

Shared by the supported-prose metric (evaluation) and the grounding pass's list rule (`lists.py`), so both
call the same word "found in the repository".
"""

from __future__ import annotations

import re

from moxi_pipeline.readme import markdown

# English function words, and words every README uses of any project: they say nothing the repository must back
STOP_WORDS = frozenset("""
a about above after again against all also an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having here how i if in into
is it its itself just more most no nor not now of off on once only or other our out over own same she should so
some such than that the their them then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours use used using uses allows provides
project package library tool simple easy new way make makes one two well like get gets see via etc
""".split())
LIST_MARK = re.compile(r"^\s*([-*+]|\d+[.)])\s")  # a list item's mark: "- ", "* ", "1. ", "2) "
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9+#-]*[A-Za-z0-9+#]|[A-Za-z]")


def plain_words(line: str) -> str:
    """A line's words, lower-cased, without list marks, emphasis or punctuation: what it says, to compare."""
    return " ".join(re.sub(r"[^\w\s]", " ", LIST_MARK.sub("", line).replace("_", " ").lower()).split())


def markdown_plain(text: str) -> str:
    """Link targets, bare URLs (the URL metrics judge those) and inline code markers dropped: `[text](url)` -> text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return markdown.BARE_URL.sub(" ", text).replace("`", " ")


def content_words(sentence: str, project_names: set[str] = frozenset()) -> list[str]:
    """The sentence's words, lower-cased, but stop words, words of two letters or fewer and `project_names`."""
    words = [w.lower() for w in _WORD.findall(markdown_plain(sentence))]
    return [w for w in words if len(w) > 2 and w not in STOP_WORDS and w not in project_names]


def project_names(*names: str) -> frozenset[str]:
    """The words a project's names are made of, and each name run together: "Spam-Detector" -> spam, detector,
    spamdetector. Not content words: a sentence that only names the project says nothing about it."""
    parts = [re.split(r"[\s_./-]+", name.lower()) for name in names if name]
    return frozenset(part for split in parts for part in split if part) | {"".join(split) for split in parts}


def stem(word: str) -> str:
    """A crude stem, enough for substring search: parses/parsing/parsed -> pars."""
    for suffix in ("ing", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word
