"""Record validation: bad values fail naming the field; content_hash tracks exactly what the model sees."""

from __future__ import annotations

import hashlib
import json

import pytest
from pydantic import ValidationError

from moxi_pipeline.records import (
    KeyFile,
    ReadmeChunk,
    RepoRecord,
    SampleInput,
    SftSample,
    content_hash,
)


def repo_fields(**overrides) -> dict:
    fields = {
        "repo_url": "https://github.com/octo/demo", "owner": "octo", "repo": "demo", "readme": "# demo\n\nHello.\n",
        "file_tree": ("README.md", "demo/__init__.py"), "key_files": (KeyFile(path="demo/__init__.py", content="x = 1"),),
        "source": "jsonl",
    }
    return {**fields, **overrides}


@pytest.mark.parametrize("readme", ["", "   ", "\n\t\n"])
def test_blank_readme_is_rejected_naming_the_field(readme):
    with pytest.raises(ValidationError) as caught:
        RepoRecord(**repo_fields(readme=readme))
    errors = caught.value.errors()
    assert [error["loc"] for error in errors] == [("readme",)]
    assert "readme is empty" in errors[0]["msg"]


@pytest.mark.parametrize("field", ["repo_url", "repo"])
def test_empty_identity_fields_are_rejected(field):
    with pytest.raises(ValidationError) as caught:
        RepoRecord(**repo_fields(**{field: ""}))
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


@pytest.mark.parametrize("source", ["pypi", "JSONL", ""])
def test_unknown_source_is_rejected(source):
    with pytest.raises(ValidationError) as caught:
        RepoRecord(**repo_fields(source=source))
    assert [error["loc"] for error in caught.value.errors()] == [("source",)]


def test_content_hash_is_sha256_of_readme_tree_and_key_files():
    record = RepoRecord(**repo_fields())
    payload = json.dumps(
        {"readme": "# demo\n\nHello.\n", "file_tree": ["README.md", "demo/__init__.py"],
         "key_files": [["demo/__init__.py", "x = 1"]]},
        sort_keys=True,
    )
    assert record.content_hash == hashlib.sha256(payload.encode()).hexdigest()
    assert RepoRecord(**repo_fields()).content_hash == record.content_hash


@pytest.mark.parametrize(
    "change",
    [
        {"readme": "# demo\n\nHello!\n"},
        {"file_tree": ("README.md",)},
        {"key_files": (KeyFile(path="demo/__init__.py", content="x = 2"),)},
        {"key_files": ()},
    ],
)
def test_content_hash_changes_with_what_the_model_sees(change):
    assert RepoRecord(**repo_fields(**change)).content_hash != RepoRecord(**repo_fields()).content_hash


@pytest.mark.parametrize("change", [{"owner": "someone"}, {"license": "MIT"}, {"language": "Go"}, {"source": "local"}])
def test_content_hash_ignores_metadata(change):
    assert RepoRecord(**repo_fields(**change)).content_hash == RepoRecord(**repo_fields()).content_hash


def test_a_given_content_hash_is_kept():
    assert RepoRecord(**repo_fields(content_hash="abc")).content_hash == "abc"


def test_content_hash_function_matches_the_record():
    record = RepoRecord(**repo_fields())
    assert content_hash(record.readme, record.file_tree, record.key_files) == record.content_hash


def test_extra_fields_are_ignored():
    record = RepoRecord(**repo_fields(stars=120, commit="deadbeef"))
    assert not hasattr(record, "stars")
    assert "stars" not in record.to_dict()


def test_records_are_frozen():
    record = RepoRecord(**repo_fields())
    with pytest.raises(ValidationError):
        record.readme = "# other"


def test_key_files_and_tree_coerce_from_json_lists():
    record = RepoRecord(**repo_fields(file_tree=["a.py"], key_files=[{"path": "a.py", "content": "print(1)"}]))
    assert record.file_tree == ("a.py",)
    assert record.key_files == (KeyFile(path="a.py", content="print(1)"),)
    assert RepoRecord(**record.to_dict()) == record


def test_key_file_needs_a_path():
    with pytest.raises(ValidationError) as caught:
        KeyFile(path="", content="x")
    assert [error["loc"] for error in caught.value.errors()] == [("path",)]


def test_chunk_index_must_not_be_negative():
    with pytest.raises(ValidationError) as caught:
        ReadmeChunk(repo_url="u", repo="r", chunk_index=-1, section_title="", content="x", file_tree=())
    assert [error["loc"] for error in caught.value.errors()] == [("chunk_index",)]


@pytest.mark.parametrize("field, value", [("kind", "chapter"), ("split", "validation"), ("content", ""), ("instruction", "")])
def test_sft_sample_rejects_bad_values_by_field(field, value):
    fields = {
        "instruction": "Write the README.", "input": SampleInput(file_tree=("a.py",), project_type="python_project"),
        "content": "# r", "repo_url": "u", "repo": "r", "kind": "readme", "split": "train",
    }
    with pytest.raises(ValidationError) as caught:
        SftSample(**{**fields, field: value})
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


# --- a record survives the local store unchanged ----------------------------------------------------


def test_record_with_odd_text_survives_the_local_store(tmp_path):
    from moxi_pipeline.storage import LocalStore

    # Line separators JSON leaves raw, a CR, a NUL, and lone surrogates (a broken `\udcff` escape in an
    # imported record, a non-UTF-8 file name) that UTF-8 cannot hold and the store used to crash on.
    record = RepoRecord(**repo_fields(
        readme="# demo\n\none\u2028two\x85three\u2029four\r\nNUL\x00 broken \udcff escape\n",
        file_tree=("caf\udce9.py", "a\u2028b.py"), owner="\ud800",
    ))
    store = LocalStore(tmp_path)
    path = store.write_records("raw_readmes", [record.to_dict()])
    assert [RepoRecord.model_validate(row) for row in store.read_records("raw_readmes")] == [record]
    assert path.read_bytes().decode("utf-8").count("\n") == 1  # one line: the raw separators split nothing
    assert sorted(p.name for p in path.parent.iterdir()) == ["raw_readmes.jsonl"]  # no temporary file left


def test_store_refuses_a_surrogate_pair_it_could_only_merge(tmp_path):
    from moxi_pipeline.storage import LocalStore

    # "\ud83d\ude00" as two code points would read back as the one character "😀": refuse, don't change it.
    store = LocalStore(tmp_path)
    rows = [RepoRecord(**repo_fields()).to_dict(), RepoRecord(**repo_fields(owner="\ud83d\ude00")).to_dict()]
    with pytest.raises(ValueError, match=r"raw_readmes row 1: a string holds the surrogate pair '\\ud83d\\ude00'"):
        store.write_records("raw_readmes", rows)
    assert not (tmp_path / "records").exists() or list((tmp_path / "records").iterdir()) == []
