"""One JSON Lines reader for the project: "\n" only, so U+2028 stays inside its string; bad rows name file and line."""

from __future__ import annotations

import json

import pytest

from moxi_pipeline.dataset.assembly import load_public_samples
from moxi_pipeline.records import SampleInput, SftSample
from moxi_pipeline.storage import LocalStore
from moxi_pipeline.storage.jsonl import json_lines, read_json_lines

ODD = "one\u2028two\u2029three\x85four\x0bfive\x0csix\x1c"  # every character str.splitlines() splits on, besides \n\r


def _sample(content: str) -> SftSample:
    return SftSample(instruction="Write a README", input=SampleInput(file_tree=("a.py",), project_type="python_library"),
                     content=content, repo_url="https://github.com/o/r", repo="r", kind="readme", split="train")


def test_lines_are_split_on_newline_only():
    text = json.dumps({"a": ODD}, ensure_ascii=False) + "\n\n" + json.dumps({"b": 1}) + "\r\n"
    assert [number for number, _ in json_lines(text)] == [1, 3]


def test_a_row_the_store_writes_with_u2028_reads_back_whole(tmp_path):
    path = LocalStore(tmp_path).write_records("sft_dataset", [_sample(ODD).to_dict()])
    assert read_json_lines(path) == [_sample(ODD).to_dict()]


@pytest.mark.parametrize(("text", "message"), [
    ('{"a": 1}\n{"a": \n', r"rows\.jsonl line 2: not JSON \(Expecting value at column 7\)"),
    ('{"a": 1}\n\n["x"]\n', r"rows\.jsonl line 3: expected a JSON object, got list"),
    (b'{"a": "\xff"}\n', r"rows\.jsonl: not UTF-8 text \(byte 7\)"),
])
def test_a_bad_row_is_named_by_file_and_line(tmp_path, text, message):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError, match=message):
        read_json_lines(path)


def test_the_public_dataset_loader_keeps_u2028_inside_a_row(tmp_path):
    path = tmp_path / "public.jsonl"
    path.write_text(json.dumps({"instruction": "Say it", "output": ODD}, ensure_ascii=False) + "\n", encoding="utf-8")
    [sample] = load_public_samples(str(path), 5)
    assert sample.content == ODD.strip()


@pytest.mark.parametrize(("name", "text", "message"), [
    ("public.json", '["just a string"]', r"public_dataset .*public\.json: row 0 is str, expected an object"),
    ("public.json", '{"rows": []}', r"public_dataset .*public\.json: expected a JSON list of rows"),
    ("public.json", '[{"instruction": ', r"public_dataset .*public\.json: not JSON"),
    ("public.jsonl", '{"instruction": "a", "output": "b"}\n"just a string"\n', r"public\.jsonl line 2: expected a JSON object"),
])
def test_the_public_dataset_loader_names_a_bad_file_clearly(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=message):
        load_public_samples(str(tmp_path / name), 5)
