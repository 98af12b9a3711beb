"""The MongoDB store and I/O manager against a real wire-protocol server (nx-27017, or MOXI_TEST_MONGODB_URI)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import dagster as dg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moxi_pipeline.defs.io_managers import (
    LocalRecordIOManager,
    MongoRecordIOManager,
    record_io_manager,
)
from moxi_pipeline.settings import load_settings
from moxi_pipeline.storage.mongo import MongoStore, decode, encode
from moxi_pipeline_tests.mongo_server import mongodb_uri


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory):
    with mongodb_uri(tmp_path_factory.mktemp("mongo")) as uri:
        yield uri


@pytest.fixture
def mongo_store(mongo_uri):
    # a database per test: tests never see each other's documents
    name = f"moxi_test_{uuid.uuid4().hex[:12]}"
    with MongoStore(mongo_uri, name) as store:
        yield store
        store._client.drop_database(name)


def _sample(i: int, readme: str = "# r\n\ntext") -> dict:
    return {"repo_url": f"https://github.com/o/r{i}", "readme": readme, "file_tree": ["a.py", f"src/m{i}.py"]}


def test_mongo_rerun_upserts_by_repo_url_without_duplicates_and_stamps_the_run(mongo_store):
    rows = [_sample(i) for i in range(3)]
    first = mongo_store.write_records("readme_samples", rows, run_id="run-1")
    changed = [rows[0], {**rows[1], "readme": "# r1\n\nnew"}, rows[2]]
    again = mongo_store.write_records("readme_samples", changed, run_id="run-2")
    assert (first.inserted, first.replaced, again.inserted, again.replaced) == (3, 0, 0, 3)
    assert mongo_store.count("readme_samples") == 3
    assert mongo_store.read_records("readme_samples") == changed
    stamped = list(mongo_store.iter_records("readme_samples", with_stamp=True))
    assert {row["_run_id"] for row in stamped} == {"run-2"}
    assert all(isinstance(row["_materialized_at"], datetime) and row["_materialized_at"].tzinfo for row in stamped)
    assert mongo_store.latest_run("readme_samples")["count"] == 3


def test_mongo_unique_indexes_refuse_a_second_document_with_the_same_natural_key(mongo_store):
    from pymongo.errors import DuplicateKeyError

    mongo_store.write_records("readme_chunks", [{"repo_url": "u", "chunk_index": 0, "content": "a"},
                                                {"repo_url": "u", "chunk_index": 1, "content": "b"}], run_id="r")
    indexes = mongo_store.db["readme_chunks"].index_information().values()  # nx-27017 names indexes its own way
    # unique per run: a run's own documents never collide, and a later run writes beside them until it commits
    assert [index.get("unique") for index in indexes
            if index["key"] == [("repo_url", 1), ("chunk_index", 1), ("_run_id", 1)]] == [True]
    with pytest.raises(DuplicateKeyError):
        mongo_store.db["readme_chunks"].insert_one({"repo_url": "u", "chunk_index": 1, "_run_id": "r", "content": "c"})
    with pytest.raises(ValueError, match=r"readme_chunks row 1 repeats the natural key \{'repo_url': 'u', 'chunk_index': 0\}"):
        mongo_store.write_records("readme_chunks", [{"repo_url": "u", "chunk_index": 0}] * 2, run_id="r2")


def test_mongo_sft_samples_are_keyed_by_content_hash_and_identical_samples_are_all_kept(mongo_store):
    sample = {"instruction": "Write", "input": {"file_tree": ["a"]}, "content": "x", "repo_url": "u"}
    other = {**sample, "content": "y"}
    for run in ("r1", "r2"):
        mongo_store.write_records("sft_samples", [sample, other, sample], run_id=run)
    assert mongo_store.count("sft_samples") == 3
    assert mongo_store.read_records("sft_samples") == [sample, other, sample]


def test_mongo_reads_the_latest_run_and_keeps_documents_a_later_run_dropped(mongo_store):
    mongo_store.write_records("readme_samples", [_sample(1), _sample(2)], run_id="r1")
    mongo_store.write_records("readme_samples", [_sample(2)], run_id="r2")
    assert mongo_store.read_records("readme_samples") == [_sample(2)]
    assert mongo_store.count("readme_samples") == 2
    # r1 is no longer whole (r2 replaced one of its two): reading it is refused, not answered with half of it
    with pytest.raises(ValueError, match=r"readme_samples: run r1 wrote 2 records, 1 are there now: a partial read is refused"):
        mongo_store.read_records("readme_samples", run_id="r1")
    with pytest.raises(FileNotFoundError, match="no complete run 'r9' in MongoDB collection 'readme_samples'"):
        mongo_store.read_records("readme_samples", run_id="r9")


def test_mongo_keys_with_dollar_dot_percent_and_json_in_values_round_trip_unchanged(mongo_store):
    row = {
        "repo_url": "https://github.com/o/r",
        "readme": '```json\n{"$schema": "x", "a.b": {"$ref": "#/c.d"}}\n```\n',
        "file_tree": ["src/a.b/c.py", "$HOME/.config", "50%/x"],
        "metadata": {"$set": 1, "a.b": {"$x.y": [{"k.%24": 2, "%": None}]}, "%2E": "literal", "nul\0key": 3},
    }
    mongo_store.write_records("readme_samples", [row], run_id="r")
    assert mongo_store.read_records("readme_samples") == [row]
    stored = mongo_store.db["readme_samples"].find_one({}, {"_id": 0})["metadata"]
    assert sorted(stored) == ["%24set", "%252E", "a%2Eb", "nul%00key"]


_KEYS = st.text(st.characters(exclude_categories=("Cs",)), max_size=6)
_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2**31, 2**31) | st.text(st.characters(exclude_categories=("Cs",))),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3), max_leaves=8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metadata=st.dictionaries(_KEYS, _VALUES, max_size=4))
def test_mongo_any_user_dict_round_trips_through_the_server(mongo_store, metadata):
    assert decode(encode(metadata)) == metadata
    mongo_store.write_records("things", [{"metadata": metadata}], run_id=str(uuid.uuid4()))
    assert mongo_store.read_records("things") == [{"metadata": metadata}]


def test_mongo_refuses_a_record_field_that_collides_with_the_stores_own(mongo_store):
    with pytest.raises(ValueError, match="readme_samples row 0: field '_run_id' starts with '_'"):
        mongo_store.write_records("readme_samples", [{"repo_url": "u", "_run_id": "x"}], run_id="r")


def test_mongo_io_manager_is_chosen_only_when_mongodb_uri_is_set(tmp_path):
    local = record_io_manager(load_settings({"MOXI_DATA_DIR": str(tmp_path)}))
    mongo = record_io_manager(load_settings({"MOXI_DATA_DIR": str(tmp_path), "MONGODB_URI": "mongodb://u:pw@h:1",
                                             "MONGODB_DB_NAME": "readmes"}))
    assert type(local) is LocalRecordIOManager
    assert (type(mongo), mongo.db_name, mongo.uri) == (MongoRecordIOManager, "readmes", None)  # the URI stays in settings


def test_mongo_io_manager_materializes_raw_readmes_and_chunks_and_a_rerun_duplicates_nothing(tmp_path, mongo_uri):
    from moxi_pipeline.defs import collect as collect_defs
    from moxi_pipeline.defs import dataset as dataset_defs

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({**_sample(i, f"# R{i}\n\n## Usage\n\n{'Run it. ' * 40}\n"),
                                          "key_files": [{"path": "a.py", "content": "x = {'$k.v': 1}\n"}]}) + "\n"
                              for i in range(3)))
    db_name = f"moxi_test_{uuid.uuid4().hex[:12]}"
    io_manager = MongoRecordIOManager(data_dir=str(tmp_path / "data"), uri=mongo_uri, db_name=db_name)
    run_config = {"ops": {"raw_readmes": {"config": {"source": "jsonl", "path": str(corpus)}}}}
    runs = [dg.materialize([collect_defs.raw_readmes, dataset_defs.readme_chunks], resources={"io_manager": io_manager},
                           run_config=run_config) for _ in range(2)]
    with MongoStore(mongo_uri, db_name) as store:
        samples = list(store.iter_records("readme_samples", with_stamp=True))
        chunks = store.read_records("readme_chunks")
        counts = (store.count("readme_samples"), store.count("readme_chunks"))
        store._client.drop_database(db_name)
    chunk_meta = runs[1].asset_materializations_for_node("readme_chunks")[0].metadata
    assert counts == (3, chunk_meta["chunks"].value)  # the second run replaced, it did not add
    assert [s["repo_url"] for s in samples] == [f"https://github.com/o/r{i}" for i in range(3)]
    assert {s["_run_id"] for s in samples} == {runs[1].run_id}
    assert samples[0]["key_files"] == [{"path": "a.py", "content": "x = {'$k.v': 1}\n"}]
    # readme_chunks read raw_readmes back through the I/O manager: chunks carry each repository's tree
    assert {c["repo_url"]: c["file_tree"] for c in chunks}["https://github.com/o/r1"] == ["a.py", "src/m1.py"]
    meta = runs[1].asset_materializations_for_node("raw_readmes")[0].metadata
    assert (meta["mongodb_collection"].value, meta["mongodb_inserted"].value, meta["mongodb_replaced"].value) == (
        f"{db_name}.readme_samples", 0, 3)


def test_moxi_migrate_loads_a_collection_file_into_mongo_once_however_often_it_runs(tmp_path, mongo_uri, monkeypatch, capsys):
    from moxi_pipeline.cli import main

    db_name = f"moxi_test_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.setenv("MONGODB_DB_NAME", db_name)
    # the seed's awesome_readme_clean.json: a JSON list, no key_files, a GitHub license object
    (tmp_path / "clean.json").write_text(json.dumps([
        {**_sample(1), "license": {"spdx_id": "MIT"}}, _sample(2), {"repo_url": "https://github.com/o/empty", "readme": ""}]))
    outputs = []
    for _ in range(2):
        assert main(["migrate", str(tmp_path / "clean.json")]) == 0
        outputs.append(capsys.readouterr().out)
    with MongoStore(mongo_uri, db_name) as store:
        rows = store.read_records("readme_samples")
        store._client.drop_database(db_name)
    assert outputs == [f"{db_name}.readme_samples: 2 records (2 new, 0 replaced), 1 skipped\n",
                       f"{db_name}.readme_samples: 2 records (0 new, 2 replaced), 1 skipped\n"]
    assert [(r["repo_url"], r["license"], r["source"]) for r in rows] == [
        ("https://github.com/o/r1", "MIT", "jsonl"), ("https://github.com/o/r2", None, "jsonl")]
