"""What kind of README section a heading names ("Getting started" is installation), by keywords."""

from __future__ import annotations

import re

# Section kinds in README order.
SECTION_KINDS = ("about", "installation", "usage", "configuration", "api", "contributing", "license", "other")

# First match wins, so "Getting started with the API" is installation, "Running tests" is contributing.
# Patterns match whole words (`\bcli\b` must not match "client"); stems like `install` take any ending.
_KIND_PATTERNS = (
    ("installation", r"\binstall\w*|getting started|get started|\bset ?up\b|quick ?start|requirements?\b"
                     r"|prerequisites?|\bdownload|\bbuild(ing)?\b"),
    ("contributing", r"contribut\w*|\bdevelop\w*|\bhacking\b|pull requests?|code of conduct|\btest(s|ing)?\b"),
    ("license", r"licen[cs]\w*|copyright"),
    ("usage", r"\busage\b|\bus(e|es|ing)\b|\bexamples?\b|how to|tutorial|\bdemo\b|\brun(ning)?\b"
              r"|\bcommands?\b|\bcli\b"),
    ("configuration", r"\bconfig\w*|\boptions?\b|\bsettings?\b|environment|customi[sz]\w*|parameters?"),
    ("api", r"\bapi\b|\breference\b|\bmethods?\b|\bfunctions?\b|\bclass(es)?\b|\binterface\b|endpoints?"),
    ("about", r"\babout\b|overview|introduction|\bintro\b|what is|description|features?\b|\bwhy\b"
              r"|motivation|background"),
)

H1_START = re.compile(r"^\s*(#(\s|$)|<h1[\s>]|[^\n]+\n=+[ \t]*(\n|$))", re.IGNORECASE)


def section_kind(section_title: str) -> str:
    """Map a heading to one of SECTION_KINDS by keywords; "" (the preamble) is "about"."""
    words = section_title.strip().lower()
    if not words:
        return "about"
    for kind, pattern in _KIND_PATTERNS:
        if re.search(pattern, words):
            return kind
    return "other"
