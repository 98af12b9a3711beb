"""The `jsonl` source: records in the collection schema, from a JSON list or a JSON Lines file.

Accepted shapes: JSON Lines records such as `records.jsonl` (repo "owner/name", repo_url, readme, file_tree,
language, key_files, plus fields we ignore such as commit) and the seed's `awesome_readme_clean.json`
(a list; key_files and owner may be missing). A `.json` file, or any file whose text starts with
`[`, is one JSON list; otherwise it is one JSON object per line. A bad line or item becomes a
Skipped ("line N" / "index N") and the rest still load; a file that is not JSON at all, or JSON
that is not a list, is an error.

JSON Lines are split on "\n" only: U+2028, U+2029 and U+0085 are ordinary characters inside a JSON
string (and the local store writes them raw), so `str.splitlines()` would cut one record in two.

repo_url is normalised (`normalize_repo_url`), so `https://github.com/O/B.git` and
`git@github.com:O/B` are one repository. A string holding a lone surrogate (a broken `\udcff` escape)
is not Unicode text and skips its item: it would fail later, in the store or the tokenizer.

Filled in when absent: owner and repo from `repo` ("owner/name") or repo_url; project_type from the
file tree. source is always "jsonl" and content_hash is recomputed, so a stale hash can't survive.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import ValidationError

from moxi_pipeline.collect.project_type import detect_project_type
from moxi_pipeline.collect.result import Skipped, describe_validation_error
from moxi_pipeline.collect.urls import normalize_repo_url, owner_and_name
from moxi_pipeline.records import RepoRecord
from moxi_pipeline.storage.jsonl import json_lines

_SURROGATE = re.compile("[\ud800-\udfff]")


def read_items(path: Path) -> list[tuple[str, object]]:
    """(label, parsed value) per record, in file order; a malformed line's value is a Skipped."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json" or text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"path {str(path)!r} is not valid JSON: {error}") from error
        if not isinstance(items, list):
            raise ValueError(f"path {str(path)!r} holds {type(items).__name__}, expected a list of records")
        return [(f"index {index}", item) for index, item in enumerate(items)]
    labelled: list[tuple[str, object]] = []
    for number, line in json_lines(text):
        try:
            labelled.append((f"line {number}", json.loads(line)))
        except json.JSONDecodeError as error:
            labelled.append((f"line {number}", Skipped(f"line {number}", f"malformed JSON: {error}")))
    if labelled and all(isinstance(value, Skipped) for _, value in labelled):
        raise ValueError(f"path {str(path)!r} is not JSON or JSON Lines: no line parses ({labelled[0][1].reason})")
    return labelled


def _owner_and_repo(item: dict) -> tuple[str, str]:
    full_name = str(item.get("repo") or "")
    owner_from_url, name_from_url = owner_and_name(str(item.get("repo_url") or ""))
    owner, _, name = full_name.rpartition("/")
    return (item.get("owner") or owner or owner_from_url), (name or name_from_url)


def _license_of(value: object) -> object:
    """GitHub's API gives `{"spdx_id": "MIT", "name": "MIT License"}`; keep the short id."""
    if isinstance(value, dict):
        return value.get("spdx_id") or value.get("name")
    return value


def _lone_surrogate(item: dict) -> str | None:
    """`\\udcff` when some string in the item holds that surrogate, else None."""
    found = _SURROGATE.search(json.dumps(item, ensure_ascii=False))
    return found and f"\\u{ord(found.group()):04x}"


def record_from_item(label: str, item: object) -> RepoRecord | Skipped:
    if isinstance(item, Skipped):
        return item
    if not isinstance(item, dict):
        return Skipped(label, f"expected a JSON object, got {type(item).__name__}")
    if surrogate := _lone_surrogate(item):
        return Skipped(label, f"not valid Unicode: a string holds the lone surrogate {surrogate} (a broken escape)")
    owner, repo = _owner_and_repo(item)
    fields = {**item, "owner": owner, "repo": repo, "source": "jsonl", "content_hash": ""}
    if isinstance(item.get("repo_url"), str):
        fields["repo_url"] = normalize_repo_url(item["repo_url"])
    fields["license"] = _license_of(item.get("license"))
    try:
        record = RepoRecord(**fields)
    except ValidationError as error:
        return Skipped(label, describe_validation_error(error))
    if item.get("project_type"):
        return record
    project_type = detect_project_type(record.file_tree, record.key_files, record.language)
    return record.model_copy(update={"project_type": project_type})
