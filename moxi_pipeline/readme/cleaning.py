"""The clean-up of a generated section: the degenerate tails a 135M model leaves (key-file echoes,
letter-soup lines, loops, lines said twice, prose inside a shell fence, an open code fence, a sentence cut
by the token budget, a dangling heading). `clean_section` is the entry point; `decoding` writes the text.
"""

from __future__ import annotations

import re

from moxi_pipeline.readme import markdown
from moxi_pipeline.readme.words import LIST_MARK, STOP_WORDS, markdown_plain, plain_words, stem

# A line seen this many times already is a loop: greedy decoding never leaves one once it is in it.
MAX_LINE_REPEATS = 2
# Lines shorter than this ("}", "---", "|", "- ") repeat legitimately in real READMEs.
MIN_REPEAT_LINE_CHARS = 4

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
# Echoes of `prompts.render_input`: "--- path ---" blocks and its section labels.
_ECHO = re.compile(r"^(--- \S.* ---|Key files:|File tree:|Project: .+\(.+\))\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(\s|$)")
_INLINE_FENCE = re.compile(r"^\s*`{3}[^`]*`{3}\s*$")  # "```cpp```": a fence opened and closed on one line
_STRAY_FENCE = re.compile(r"(?<=\S)\s*`{3,}\s*$")  # "pip install x```": a fence glued to text
_FINISHED = (".", "!", "?", ":", ")", "`", "*", "|")
# "=====" under text makes it a title, "-----" a second-level heading, or alone a rule: none is what a section says
_SETEXT_TITLE = re.compile(r"^ {0,3}(=+|-{3,})\s*$")
_ABBREVIATION = re.compile(r"(?:^|[\s(])(?:e\.g|i\.e|vs|cf|[A-Za-z])\.$")  # "e.g.", "i.e.", "(e." before a cut
# 40+ letters with no space, digit or slash: no English word or identifier; it is what greedy decoding
# under a repetition penalty emits once it runs out of allowed tokens ("npmjimiemlitekomit...").
_GIBBERISH = re.compile(r"[A-Za-z]{40,}")
# 8+ of one symbol beside other text ("*   ***********.JS"): a rule or table line is that symbol alone
_SYMBOL_RUN = re.compile(r"([^\w\s|])\1{7,}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def clean_section(text: str, prefix: str, cut_by_budget: bool = True) -> str:
    """One section: the forced prefix and what follows, up to the next heading, cleaned like a README.

    Only what the model wrote is cleaned: the forced prefix (the heading, About's first sentence) always
    survives, whatever a filter makes of the line the model continued it on.
    `cut_by_budget`: generation ran out of tokens, so its last sentence is unfinished and goes; a
    section that ended by itself keeps its last line (a list item needs no full stop)."""
    if not text.startswith(prefix):
        raise ValueError(f"clean_section: the text does not open with its forced prefix {prefix!r}")
    lines = text[len(prefix):].split("\n")
    for index in range(1, len(lines)):
        if _HEADING.match(lines[index]) and not _inside_fence(lines[:index]):
            lines = lines[:index]
            break
    lines = [_STRAY_FENCE.sub("", line) for line in lines if not _INLINE_FENCE.match(line)]
    lines = _cut_at_echo([""] + lines)[1:]
    lines = _drop_gibberish(lines)
    lines = _drop_word_loops(lines)
    lines = _drop_setext_titles(lines)
    lines = _cut_at_loop(lines)
    lines = _drop_repeated_lines(lines, prefix)
    lines = _drop_restated_sentences(lines, prefix)
    lines = _close_before_reopening(lines)
    if cut_by_budget and lines and lines[-1].strip() and _inside_fence(lines) and not _FENCE.match(lines[-1]):
        lines = lines[:-1]  # cut by the budget inside a code block: its last line ("const [counter") is unfinished
    lines = _close_fence(lines)
    lines = _tidy_fence_infos(lines)
    lines = _balance_bold(lines)
    lines = _prose_out_of_shell_fences(lines)
    if cut_by_budget:
        lines = _trim_unfinished(lines, 0)
    lines = _drop_dangling_headings([""] + lines)[1:]
    return (prefix + "\n".join(lines)).rstrip()


def _drop_setext_titles(lines: list[str]) -> list[str]:
    """A line of `=` under a line of text makes that text a second title (About's "ReDoc." over "======"): the
    README has one, the forced heading. A line of `-` makes it a heading over nothing, or draws a rule inside a
    section. Those lines go and the text stays a paragraph; code keeps its lines."""
    code = markdown.fenced_lines(lines)
    return [line for index, line in enumerate(lines) if index in code or not _SETEXT_TITLE.match(line)]


def _trim_unfinished(lines: list[str], keep: int) -> list[str]:
    """A section cut by the token budget ends mid-sentence: back up to its last finished sentence."""
    lines = list(lines)
    while len(lines) > keep and not lines[-1].strip():
        lines.pop()
    if len(lines) <= keep or _FENCE.match(lines[-1]):
        return lines
    last = lines[-1].rstrip()
    if last.endswith(_FINISHED) and not (last.endswith(".") and _ends_no_sentence(last)):  # "... paths (e."
        return lines[:-1] if last.endswith(":") else lines
    cut = _last_sentence_end(last)
    if cut > 0 and not LIST_MARK.match(last):
        return lines[:-1] + [last[: cut + 1]]
    return lines[:-1]


def _last_sentence_end(line: str) -> int:
    """The index of the mark that ends the line's last finished sentence, -1 if none: a "." after an
    abbreviation ("e.g. ", "i.e. ", "vs. "), or inside a parenthesis still open, ends no sentence ("newer
    versions of PlexRipper (e.g. 3.0 and" is not cut to "... (e.g.")."""
    for match in reversed(list(re.finditer(r"[.!?](?= )", line))):
        if not _ends_no_sentence(line[: match.start() + 1]):
            return match.start()
    return -1


def _ends_no_sentence(text: str) -> bool:
    """`text` ends with a mark after an abbreviation ("e.g.", "(e.") or inside a parenthesis still open."""
    return bool(_ABBREVIATION.search(text)) or text.count("(") > text.count(")")


def _inside_fence(lines: list[str]) -> bool:
    return sum(1 for line in lines if _FENCE.match(line)) % 2 == 1


def _cut_at_echo(lines: list[str]) -> list[str]:
    """Everything from the first echoed prompt line on is a key-file dump, not README prose."""
    for index, line in enumerate(lines):
        if index > 0 and _ECHO.match(line.strip()):
            return lines[:index]
    return lines


def _drop_gibberish(lines: list[str]) -> list[str]:
    """Drop lines holding a run of letters no language has, or a run of one symbol that is no rule
    ("*** ***********"); the model often recovers on the next line."""
    return [line for line in lines if not _GIBBERISH.search(line) and not _mixed_symbol_run(line)]


def _mixed_symbol_run(line: str) -> bool:
    """8+ of one symbol beside other text, or 20+ alone that make no rule or underline ('-', '=', '_')."""
    match = _SYMBOL_RUN.search(line)
    if match is None:
        return False
    alone = not line.strip().replace(match.group(1), "").strip()
    return not alone or (match.group(1) not in "-=_" and len(line.strip()) >= 20)


_WORD_LOOP = re.compile(r"\b(\w{2,})(?:[\s,;]+\1\b){2,}", re.IGNORECASE)  # "lightweight, lightweight, lightweight"


def _drop_word_loops(lines: list[str]) -> list[str]:
    """A sentence that says one word three times running is decoding collapse ("The Stronghold is a lightweight,
    lightweight, lightweight, ..."; "React Native Native Native"): it goes, and a line left with nothing goes.
    Code is left alone."""
    code = markdown.fenced_lines(lines)
    out = []
    for index, line in enumerate(lines):
        if index in code or not _WORD_LOOP.search(line):
            out.append(line)
            continue
        mark = LIST_MARK.match(line)
        head, body = (line[: mark.end()], line[mark.end():]) if mark else ("", line)
        kept = [sentence for sentence in _SENTENCE_END.split(body) if not _WORD_LOOP.search(sentence)]
        if kept:
            out.append(head + " ".join(kept))
    return out


def _cut_at_loop(lines: list[str]) -> list[str]:
    """Cut at the first line already seen MAX_LINE_REPEATS times (fences and short lines exempt)."""
    seen: dict[str, int] = {}
    for index, line in enumerate(lines):
        key = line.strip()
        if len(key) < MIN_REPEAT_LINE_CHARS or _FENCE.match(key):
            continue
        if seen.get(key, 0) >= MAX_LINE_REPEATS:
            return lines[:index]
        seen[key] = seen.get(key, 0) + 1
    return lines


def _drop_restated_sentences(lines: list[str], prefix: str) -> list[str]:
    """A prose sentence whose content words all stand in one sentence before it, the forced prefix's included
    ("It is designed to be fast." ... "It is not designed to be fast."), says nothing new and goes. A paragraph
    that lost one is written on one line (its sentences ran across lines); one left empty goes. List items,
    code and sentences that introduce something (ending ':') are left alone."""
    seen = [_sentence_words(sentence) for line in prefix.split("\n") if not _HEADING.match(line)
            for sentence in _SENTENCE_END.split(line.strip())]
    code = markdown.fenced_lines(lines)
    out: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        kept, dropped = [], False
        for sentence in _SENTENCE_END.split(" ".join(line.strip() for line in paragraph)):
            words = _sentence_words(sentence)
            if words and not sentence.rstrip().endswith(":") and any(words <= earlier for earlier in seen):
                dropped = True
                continue
            seen.append(words)
            kept.append(sentence)
        if not dropped:
            out.extend(paragraph)
        elif kept:
            out.append(paragraph[0][: len(paragraph[0]) - len(paragraph[0].lstrip())] + " ".join(kept))
        paragraph.clear()

    for index, line in enumerate(lines):
        prose = index not in code and line.strip() and not LIST_MARK.match(line) and not (
            line.lstrip().startswith(("#", "|", "<", ">")))
        if prose:
            paragraph.append(line)
            continue
        if paragraph:
            flush()
        out.append(line)
    if paragraph:
        flush()
    return out


# the stop words but those a README says of its project: "It is a Go library." and "It is also a Go library."
# are the same claim, "go library", though the supported-prose metric judges neither (no content word)
_FUNCTION_WORDS = STOP_WORDS - frozenset("""use used using uses allows provides project package library tool simple easy
new way make makes one two well like get gets see via etc""".split())


def _sentence_words(sentence: str) -> frozenset[str]:
    """What a sentence claims, to compare: its words but function words and numbers ("Python 2", "Python 3")."""
    return frozenset(stem(word) for word in plain_words(markdown_plain(sentence)).split()
                     if word not in _FUNCTION_WORDS and not word.isdigit())


def _close_before_reopening(lines: list[str]) -> list[str]:
    """A fence with a language ("```jsx") while a block is open: the model meant to close the block and open
    another (to CommonMark the line is code, and the block runs on past it, swallowing the prose between). The
    block is closed at its last blank line, where the model went back to prose ("3. Use it:"), else just before.
    A closing fence indented past CommonMark's 3 spaces ("       ```" under "```csharp") is a code line to a
    renderer, so the block would run on over the next headings: it moves to its opener's indent."""
    out: list[str] = []
    open_at, open_marker, indent = -1, "", ""
    for line in lines:
        match = _FENCE.match(line)
        if match:
            if not open_marker:
                open_at, open_marker, indent = len(out), match.group(1), line[: len(line) - len(line.lstrip())]
            elif markdown.closes_fence(line.strip(), open_marker):
                line = indent + line.strip()
                open_marker = ""
            elif line.strip()[len(match.group(1)):].strip() and match.group(1)[0] == open_marker[0]:
                while out and not out[-1].strip():
                    out.pop()
                blank = max((i for i in range(open_at + 2, len(out)) if not out[i].strip()), default=None)
                out.insert(len(out) if blank is None else blank, indent + open_marker)
                if blank is None:
                    out.append("")
                open_at, open_marker, indent = len(out), match.group(1), line[: len(line) - len(line.lstrip())]
        out.append(line)
    return out


def _close_fence(lines: list[str]) -> list[str]:
    """An unclosed code fence at the end is closed when it holds code, dropped when it is empty (blank lines
    and bare `#`s, a heading begun inside it, are not code)."""
    open_at = next((start for start, end in markdown.fence_pairs(lines) if end is None), None)
    if open_at is None:
        return lines
    # a bare "##" at the end is the next heading the model began without closing the fence: no code
    while len(lines) > open_at + 1 and re.fullmatch(r"\s*#*\s*", lines[-1]):
        lines = lines[:-1]
    if len(lines) == open_at + 1:
        return lines[:open_at]
    # at the opener's indentation: a fence opened inside a list item ("    ```js") closes there; a closer at
    # column 0 would end the item and open a new block that swallows the rest of the README
    opener = lines[open_at]
    return lines + [opener[: len(opener) - len(opener.lstrip())] + _FENCE.match(opener).group(1)]


def _drop_repeated_lines(lines: list[str], prefix: str) -> list[str]:
    """A line of prose that says again what the section already said ("ReDoc." under "ReDoc.", or "Typing SVGs
    can be used as a bio on you." under the sentence it cuts short) goes; code is left alone. The first line
    goes on the prefix's last line and is not judged."""
    seen = [said for said in map(plain_words, [*prefix.split("\n"), *lines[:1]]) if said]
    out, fenced = lines[:1], bool(lines) and _FENCE.match(lines[0]) is not None
    for line in lines[1:]:
        if _FENCE.match(line):
            fenced = not fenced
        said = "" if fenced or _FENCE.match(line) or _HEADING.match(line) else plain_words(line)
        if said and any(said == old or (len(said.split()) >= 4 and said in old) for old in seen):
            continue
        if said:
            seen.append(said)
        out.append(line)
    return out


_WORD = re.compile(r"^[A-Za-z][A-Za-z'’-]*[,.:;!?]?$")
_SHELL_SIGNS = re.compile(r"[|$=<>{}\\/]|--|&&|\s-\w")


def _reads_as_prose(line: str) -> bool:
    """A sentence, not a command: six or more words, nearly all plain words, none of a shell's signs."""
    words = line.split()
    if len(words) < 6 or line.lstrip().startswith("#") or _SHELL_SIGNS.search(line):
        return False
    return sum(bool(_WORD.match(word)) for word in words) >= 0.8 * len(words)


# an opening fence's language with a stray tail: "```bash#", "```python:"; a one-letter name keeps its "#" (C#, F#)
_INFO_TAIL = re.compile(r"^(\s*(?:`{3,}|~{3,})\s*)([A-Za-z][\w+.-]*?[A-Za-z0-9+]|[A-Za-z])([^\w\s+]+)\s*$")


def _tidy_fence_infos(lines: list[str]) -> list[str]:
    """An opening fence's language loses a stray tail ("```bash#" -> "```bash"), so it is highlighted and read
    as the shell it is."""
    out = list(lines)
    for start, _ in markdown.fence_pairs(lines):
        found = _INFO_TAIL.match(lines[start])
        if found and not (len(found.group(2)) == 1 and found.group(3) == "#"):
            out[start] = found.group(1) + found.group(2)
    return out


def _balance_bold(lines: list[str]) -> list[str]:
    """A line of text outside code with an odd number of `**` ("1. **Zircon is a cross-platform ...", cut before
    it closed) shows the stars: the last one goes. A line of stars alone is a rule."""
    code = markdown.fenced_lines(lines)
    out = []
    for index, line in enumerate(lines):
        if index not in code and "`" not in line and line.count("**") % 2 and re.search(r"[^\W_]", line):
            at = line.rindex("**")
            line = (line[:at] + line[at + 2 :]).rstrip()
        out.append(line)
    return out


def _prose_out_of_shell_fences(lines: list[str]) -> list[str]:
    """A sentence the model wrote inside a shell fence ("This will print out a list of all files...") is
    moved out of it as a paragraph: a reader would copy it into a terminal, and the grounding pass judges
    prose by its sentences, not as a command line. The code around it keeps its fence (one per run of code)."""
    pairs = [(start, end) for start, end in markdown.fence_pairs(lines) if end is not None]
    out, index = [], 0
    for start, end in pairs:
        opener = lines[start]
        info = _FENCE.sub("", opener).strip().split()
        shell = (info[0].lower() if info else "") in markdown.SHELL_INFOS
        if not shell or not any(map(_reads_as_prose, lines[start + 1:end])):
            continue
        out += lines[index:start]
        code: list[str] = []

        def flush() -> None:
            if any(line.strip() for line in code):
                out.extend([opener, *code, lines[end]])
            code.clear()

        for line in lines[start + 1:end]:
            if _reads_as_prose(line):
                flush()
                out.extend(["", opener[: len(opener) - len(opener.lstrip())] + line.strip(), ""])
            else:
                code.append(line)
        flush()
        index = end + 1
    return out + lines[index:]


def _drop_dangling_headings(lines: list[str]) -> list[str]:
    """A heading with nothing under it at the very end is a promise the model did not keep."""
    while len(lines) > 1 and (not lines[-1].strip() or _HEADING.match(lines[-1])):
        lines = lines[:-1]
    return lines
