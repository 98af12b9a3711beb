"""A repository's one-line description from its key files, where no manifest the facts parse gives one.

Authors describe a project in more places than `package.json` and `pyproject.toml`, and a README's opening
often repeats that line word for word. In the order tried (the shallowest file first within each source):
- CocoaPods: the podspec's `summary`;
- Clojure: `project.clj`'s `:description`;
- sbt and Gradle, at the repository's root only (a subproject's description is the subproject's):
  `description := "..."`, `description = "..."`;
- a citation file: `CITATION.cff`'s `abstract`, `codemeta.json`'s `description`;
- Go: the root package's doc comment ("// Package fiber is an Express inspired web framework ..."), which
  Go's convention begins "Package <name>": its first sentence, with the name as the subject (never `main`);
- `setup.py`'s `description=NAME` or `description=module.NAME`, when another key file assigns NAME a string
  (`DESCRIPTION = "Securely configure your Mac from the terminal."`).

Each is text the repository holds, so the grounding pass has nothing to remove from it. Only a line of
prose is taken: one sentence, at most MAX_CHARS.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath

from moxi_pipeline.records import KeyFile

MAX_CHARS = 240
_QUOTED = r"""(["'])(?P<text>(?:(?!\1)[^\n\\]|\\.)+)\1"""
# (file name pattern, at the root only, pattern whose `text` group is the description)
_SOURCES = (
    (r"[^/]+\.podspec", False, rf"\.summary\s*=\s*{_QUOTED}"),
    (r"project\.clj", False, r':description\s+"(?P<text>(?:[^"\\]|\\.)+)"'),
    (r"[^/]+\.sbt", True, rf"^\s*description\s*:=\s*{_QUOTED}"),
    (r"build\.gradle(?:\.kts)?", True, rf"^\s*description\s*=\s*{_QUOTED}"),
    (r"CITATION\.cff", False, r"^abstract:\s*(?P<text>.+)$"),
)
_GO_DOC = re.compile(r"^// Package (?P<name>\w+) (?P<text>.*(?:\n//[ \t].*)*)", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)\]])[.!?](?=\s|$)")
_ABBREVIATION = re.compile(r"(?:\b[A-Za-z]\.[A-Za-z]|\betc|\bvs|\bcf)$")  # "e.g.", "i.e.", "etc.": no sentence end


def _sentence(text: str) -> str | None:
    """The first sentence of `text`, on one line; None when it is not a line of prose."""
    text = " ".join(text.replace("\\n", " ").split()).strip("'\" ")
    end = next((m.end() for m in _SENTENCE_END.finditer(text) if not _ABBREVIATION.search(text[: m.start()])), None)
    text = text[:end] if end else text
    if not re.search(r"[A-Za-z]{3}", text) or len(text) > MAX_CHARS or text.startswith(("#", "[", "<", "!")):
        return None
    return text


def _codemeta(text: str) -> str | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data.get("description") if isinstance(data, dict) and isinstance(data.get("description"), str) else None


def _go_doc(text: str) -> str | None:
    match = _GO_DOC.search(text)
    if match is None or match.group("name") == "main":
        return None
    body = re.sub(r"\n//[ \t]?", " ", match.group("text"))
    return f"{match.group('name')} {body}"


def _setup_py_constant(files: list[KeyFile]) -> str | None:
    setup = next((k.content for k in files if PurePosixPath(k.path).name == "setup.py"), None)
    reference = re.search(r"\bdescription\s*=\s*(?:\w+\.)*(?P<name>[A-Z][A-Z0-9_]*)\s*[,)]", setup or "")
    if reference is None:
        return None
    assignment = re.compile(rf"^\s*{reference.group('name')}\s*=\s*{_QUOTED}", re.MULTILINE)
    for key_file in files:
        if key_file.path.endswith(".py") and (match := assignment.search(key_file.content)):
            return match.group("text")
    return None


def _candidates(files: list[KeyFile]):
    for name_pattern, root_only, pattern in _SOURCES:
        for key_file in files:
            if re.fullmatch(name_pattern, PurePosixPath(key_file.path).name) and not (root_only and "/" in key_file.path):
                if match := re.search(pattern, key_file.content, re.MULTILINE):
                    yield match.group("text")
    yield from (_codemeta(k.content) for k in files if PurePosixPath(k.path).name == "codemeta.json")
    yield from (_go_doc(k.content) for k in files if k.path.endswith(".go") and "/" not in k.path)
    yield _setup_py_constant(files)


def key_file_description(key_files) -> str | None:
    """The first description the sources above give, as one sentence; None when none does."""
    files = sorted(key_files, key=lambda k: k.path.count("/"))
    return next((sentence for text in _candidates(files) if text and (sentence := _sentence(text))), None)
