"""The one JSON Lines reader: split on "\n" alone, one JSON value a line, a bad line named by file and line.

    rows = read_json_lines(path)                      # [value, ...]; ValueError "<path> line 3: ..." on a bad line
    for number, line in json_lines(text): ...         # (1-based line number, line) of each line that is not blank

JSON leaves U+2028, U+2029 and U+0085 raw inside strings (and the local store writes them so), and
`str.splitlines()` splits on them, cutting a record in two: every reader here splits on "\n" only, the
one byte a JSON encoder never leaves raw inside a string. A trailing "\r" (a file saved on Windows) is
whitespace to JSON and harmless.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path


def json_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number from 1, line) for each line of `text` that is not blank, split on "\\n" only."""
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield number, line


def parse_json_line(line: str, where: str, number: int):
    """One line's JSON value; ValueError "<where> line <number>: <why>" when it is not JSON."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where} line {number}: not JSON ({error.msg} at column {error.colno})") from None


def read_text(path: str | Path) -> str:
    """The file's text from its bytes (no newline translation); a ValueError names a file that is not UTF-8."""
    path = Path(path)
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start})") from None


def read_json_lines(path: str | Path, *, objects: bool = True) -> list:
    """Every line's value, in order; a line that is not JSON (or, with `objects`, not a JSON object) is a
    ValueError naming the file and the line."""
    rows = []
    for number, line in json_lines(read_text(path)):
        row = parse_json_line(line, str(path), number)
        if objects and not isinstance(row, dict):
            raise ValueError(f"{path} line {number}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows
