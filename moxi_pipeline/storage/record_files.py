"""The default store: a folder a person can browse.

    data/records/<name>.jsonl     records, one JSON object a line (never pickle)
    data/artifacts/<name>.json    pointers to directories an asset produced (models, datasets, reports)
    data/<anything else>          the directories themselves (models/, sft/, eval/)

What is written reads back unchanged:
- Text is written as UTF-8, unescaped, except lone surrogates (a `\\udcff` from a broken JSON escape or
  a non-UTF-8 file name), which UTF-8 cannot hold: they are written as `\\udcff` escapes. A high
  surrogate directly followed by a low one is refused with a ValueError: JSON can only spell the two
  as one character, so they would come back changed.
- Lines are split on "\\n" alone, never on U+2028, U+2029 or U+0085, which JSON leaves raw in strings.
- Writes go to a temporary file in the same folder, are flushed to disk and renamed into place, so a
  crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from moxi_pipeline.storage.jsonl import read_json_lines

_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


class LocalStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def records_path(self, name: str) -> Path:
        return self.root / "records" / f"{name}.jsonl"

    def json_path(self, name: str) -> Path:
        return self.root / "artifacts" / f"{name}.json"

    def write_records(self, name: str, rows: Iterable[dict]) -> Path:
        path = self.records_path(name)
        with _atomic_open(path) as handle:
            for index, row in enumerate(rows):
                handle.write(_dumps(row, f"{name} row {index}") + "\n")
        return path

    def read_records(self, name: str) -> list[dict]:
        path = self.records_path(name)
        if not path.is_file():
            raise FileNotFoundError(f"no records named {name!r} at {path}: materialize {name} first")
        return read_json_lines(path)  # from bytes, split on "\n" alone

    def write_json(self, name: str, obj: dict) -> Path:
        path = self.json_path(name)
        with _atomic_open(path) as handle:
            handle.write(_dumps(obj, name, indent=2))
        return path

    def read_json(self, name: str) -> dict:
        path = self.json_path(name)
        if not path.is_file():
            raise FileNotFoundError(f"no artifact named {name!r} at {path}: materialize {name} first")
        return json.loads(path.read_bytes().decode("utf-8"))


def _dumps(obj, what: str, indent: int | None = None) -> str:
    """JSON that UTF-8 can hold and that loads back equal (module docstring); `what` names it in errors."""
    text = json.dumps(obj, ensure_ascii=False, indent=indent)
    if _SURROGATE.search(text) is None:
        return text
    if pair := _SURROGATE_PAIR.search(text):
        raise ValueError(
            f"{what}: a string holds the surrogate pair {ascii(pair.group())} as two code points; "
            "JSON can only store it as one character, so it would not read back unchanged"
        )
    # Surrogates only occur inside JSON strings, where a \uXXXX escape is valid JSON.
    return _SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


class _atomic_open:
    """A text handle on a temporary file beside `path`, renamed over `path` only when the block succeeds."""

    def __init__(self, path: Path):
        self.path = path
        # one writer per process and thread: two writers of one name never share a temporary file
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # newline="": "\n" is written as is on every platform, so reading splits on exactly what was written
        self.handle = self.tmp.open("w", encoding="utf-8", newline="")
        return self.handle

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                self.handle.flush()
                os.fsync(self.handle.fileno())
        finally:
            self.handle.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
        return False
