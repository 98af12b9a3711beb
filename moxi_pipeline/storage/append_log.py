"""An append-only JSON Lines file: rows written one by one as results arrive, so a killed run keeps them.

A line cut short by a kill is skipped on reading and ended before the next append, so it never glues
itself to the next row.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from moxi_pipeline.storage.jsonl import json_lines


class AppendLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        text = self.path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            self._write("")  # end the cut-short line, so the next row starts on its own line
        rows = []
        for _, line in json_lines(text):  # "\n" only: U+2028 stays inside its string
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # the half-written last line of a killed run
        return rows

    def append(self, row: dict) -> None:
        self._write(json.dumps(row, ensure_ascii=False))

    def _write(self, line: str) -> None:
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
