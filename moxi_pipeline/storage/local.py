"""The default store: a folder a person can browse.

    data/records/<name>.jsonl     records, one JSON object a line (never pickle)
    data/artifacts/<name>.json    pointers to directories an asset produced (models, datasets, reports)
    data/<anything else>          the directories themselves (models/, sft/, eval/)

Writes go to a temporary file first and are renamed into place, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path


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
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        return path

    def read_records(self, name: str) -> list[dict]:
        path = self.records_path(name)
        if not path.is_file():
            raise FileNotFoundError(f"no records named {name!r} at {path}: materialize {name} first")
        with path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def write_json(self, name: str, obj: dict) -> Path:
        path = self.json_path(name)
        with _atomic_open(path) as handle:
            json.dump(obj, handle, indent=2, ensure_ascii=False)
        return path

    def read_json(self, name: str) -> dict:
        path = self.json_path(name)
        if not path.is_file():
            raise FileNotFoundError(f"no artifact named {name!r} at {path}: materialize {name} first")
        return json.loads(path.read_text(encoding="utf-8"))


class _atomic_open:
    def __init__(self, path: Path):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.tmp.open("w", encoding="utf-8")
        return self.handle

    def __exit__(self, exc_type, exc, tb) -> Iterator[None]:
        self.handle.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
        return False
