"""The MongoDB store: record collections upserted by natural key, stamped with the run that wrote them.

    store = MongoStore("mongodb://localhost:27017", "moxi")
    store.write_records("readme_samples", rows, run_id="4f2c...")   # -> WriteSummary
    for row in store.iter_records("readme_samples"): ...              # the latest run's rows, streamed

Collections and their natural keys (unique together with `_run_id`, so a re-run replaces and never duplicates):
    readme_samples   repo_url
    readme_chunks    repo_url, chunk_index
    sft_samples      _content_hash, _occurrence   (sha256 of the sample; identical samples are numbered)
Any other name is keyed like sft_samples.

Every document also carries `_run_id` (the Dagster run), `_materialized_at` (UTC) and `_position` (its
place in the write, so reads come back in the written order).

Lose nothing: a write never touches another run's documents until it is complete. It upserts its own
documents (natural key + `_run_id`), then points `_moxi_runs` at its run with the count it wrote (the
commit), and only then removes older runs' documents of the same natural keys. A writer killed at any
point before the commit leaves the previous complete run whole and still the one read; killed after it,
the new run is whole and what is left of the old is never read. Reads return the latest complete run's
documents and check their number against the count stored at the commit: a read either returns
exactly what a complete run wrote or raises ValueError naming the collection, the run and both counts.
Documents of repositories a later run no longer has are kept, and are not read back as part of it.

Round-trips: MongoDB reserves field names that start with `$` and treats `.` as a path, so every key
of user data is escaped on the way in (`%` -> `%25`, `.` -> `%2E`, a leading `$` -> `%24`, NUL -> `%00`) and
unescaped on the way out; values (file paths, JSON inside READMEs) are stored as they are. A record's
own top-level field may not start with `_`, which marks the store's fields.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

NATURAL_KEYS = {
    "readme_samples": ("repo_url",),
    "readme_chunks": ("repo_url", "chunk_index"),
    "sft_samples": ("_content_hash", "_occurrence"),
}
HASH_KEY = ("_content_hash", "_occurrence")
RUNS = "_moxi_runs"
STORE_FIELDS = ("_id", "_run_id", "_materialized_at", "_position", "_content_hash", "_occurrence")
BATCH_SIZE = 500  # documents per bulk write and per cursor batch (~500 READMEs of ~10 KB: ~5 MB a round trip)

_UNESCAPE = re.compile(r"%(25|2E|24|00)")
_UNESCAPED = {"25": "%", "2E": ".", "24": "$", "00": "\0"}


def escape_key(key: str) -> str:
    """`%` first, so every `%` in a stored key starts an escape and unescaping is exact."""
    key = key.replace("%", "%25").replace(".", "%2E").replace("\0", "%00")  # BSON keys end at a NUL
    return "%24" + key[1:] if key.startswith("$") else key


def unescape_key(key: str) -> str:
    return _UNESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], key)


def encode(value):
    """User data -> a document MongoDB stores as is: every dict key escaped, at any depth."""
    if isinstance(value, dict):
        return {escape_key(str(k)): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def decode(value):
    if isinstance(value, dict):
        return {unescape_key(k): decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def content_hash(row: dict) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class WriteSummary:
    collection: str
    written: int
    inserted: int  # new natural keys
    replaced: int  # natural keys that were there already (an unchanged re-run replaces them all)


class MongoStore:
    def __init__(self, uri: str, db_name: str, *, batch_size: int = BATCH_SIZE, timeout_ms: int = 10_000):
        from pymongo import (
            MongoClient,  # imported here: the local store needs no MongoDB driver
        )

        self._client = MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, tz_aware=True)
        self.db = self._client[db_name]
        self.batch_size = batch_size

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> MongoStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:  # never the URI: it may hold a password
        return f"MongoStore(db={self.db.name!r})"

    def keys_of(self, collection: str) -> tuple[str, ...]:
        return NATURAL_KEYS.get(collection, HASH_KEY)

    def ensure_indexes(self, collection: str) -> None:
        from pymongo import ASCENDING

        keys = self.keys_of(collection)
        for name, index in self.db[collection].index_information().items():  # an older layout: unique on keys alone
            if index.get("unique") and [k for k, _ in index["key"]] == list(keys):
                self.db[collection].drop_index(name)
        self.db[collection].create_index([(k, ASCENDING) for k in (*keys, "_run_id")], unique=True, name="natural_key_run")
        self.db[collection].create_index([("_run_id", ASCENDING), ("_position", ASCENDING)], name="run_order")

    def _documents(self, collection: str, rows: Iterable[dict], stamp: dict) -> Iterator[dict]:
        keys, seen, occurrences = self.keys_of(collection), set(), Counter()
        for position, row in enumerate(rows):
            if reserved := [k for k in row if str(k).startswith("_")]:
                raise ValueError(f"{collection} row {position}: field {reserved[0]!r} starts with '_', reserved for the store")
            document = {**encode(row), **stamp, "_position": position}
            if keys == HASH_KEY:
                digest = content_hash(row)
                document |= {"_content_hash": digest, "_occurrence": occurrences[digest]}
                occurrences[digest] += 1
            natural = tuple(document.get(k) for k in keys)
            if None in natural or natural in seen:
                problem = "has no" if None in natural else "repeats the"
                raise ValueError(f"{collection} row {position} {problem} natural key {dict(zip(keys, natural))}")
            seen.add(natural)
            yield document

    def write_records(self, collection: str, rows: Iterable[dict], run_id: str,
                      materialized_at: datetime | None = None) -> WriteSummary:
        """Write every row as `run_id`'s, commit the run with its count, then drop older runs' copies of its keys
        (module docstring: a kill at any point loses nothing)."""
        from pymongo import ReplaceOne

        self.ensure_indexes(collection)
        stamp = {"_run_id": run_id, "_materialized_at": materialized_at or datetime.now(timezone.utc)}
        keys = self.keys_of(collection)
        written, batch = 0, []
        for document in self._documents(collection, rows, stamp):
            batch.append(ReplaceOne({k: document[k] for k in (*keys, "_run_id")}, document, upsert=True))
            if len(batch) >= self.batch_size:
                written, batch = written + self._bulk(collection, batch), []
        written += self._bulk(collection, batch)
        # the commit: one document write, so a reader sees the old complete run or the new one, never a mix
        run = {**stamp, "count": written}
        self.db[RUNS].replace_one({"_id": f"{collection}/{run_id}"}, {"_id": f"{collection}/{run_id}", **run}, upsert=True)
        self.db[RUNS].replace_one({"_id": collection}, {"_id": collection, **run}, upsert=True)
        replaced = self._drop_older_copies(collection, run_id)
        return WriteSummary(collection, written, written - replaced, replaced)

    def _bulk(self, collection: str, operations: list) -> int:
        if operations:
            self.db[collection].bulk_write(operations, ordered=False)
        return len(operations)

    def _drop_older_copies(self, collection: str, run_id: str) -> int:
        """Remove other runs' documents of the natural keys `run_id` wrote; the number of those keys found."""
        from pymongo import DeleteMany

        keys = self.keys_of(collection)
        older = {tuple(d.get(k) for k in keys) for d in self.db[collection].find({"_run_id": {"$ne": run_id}}, dict.fromkeys(keys, 1))}
        ours = [tuple(d.get(k) for k in keys) for d in self.db[collection].find({"_run_id": run_id}, dict.fromkeys(keys, 1))]
        found = [natural for natural in ours if natural in older]
        for start in range(0, len(found), self.batch_size):
            self._bulk(collection, [DeleteMany({**dict(zip(keys, natural)), "_run_id": {"$ne": run_id}})
                                    for natural in found[start : start + self.batch_size]])
        return len(found)

    def latest_run(self, collection: str) -> dict | None:
        """{"_run_id", "_materialized_at", "count"} of the last completed write, or None."""
        return self.db[RUNS].find_one({"_id": collection}, {"_id": 0})

    def iter_records(self, collection: str, run_id: str | None = None, with_stamp: bool = False) -> Iterator[dict]:
        """The rows of `run_id` (default: the latest complete run) in written order, fetched `batch_size` at a time;
        ValueError when their number is not the count the run committed (checked before the first row and after
        the last)."""
        run = self.latest_run(collection) if run_id is None else self.db[RUNS].find_one({"_id": f"{collection}/{run_id}"}, {"_id": 0})
        if run is None:
            what = "no complete run" if run_id is None else f"no complete run {run_id!r}"
            raise FileNotFoundError(f"{what} in MongoDB collection {collection!r} of {self.db.name!r}: materialize it first")
        run_id, expected = run["_run_id"], run.get("count")
        self._check_count(collection, run_id, expected, self.db[collection].count_documents({"_run_id": run_id}))
        read = 0
        cursor = self.db[collection].find({"_run_id": run_id}, {"_id": 0}).sort("_position", 1).batch_size(self.batch_size)
        for document in cursor:
            stamp = {k: document.pop(k) for k in STORE_FIELDS if k in document}
            row = decode(document)
            read += 1
            yield {**row, **stamp} if with_stamp else row
        self._check_count(collection, run_id, expected, read)

    def _check_count(self, collection: str, run_id: str, expected: int | None, found: int) -> None:
        if expected is not None and found != expected:
            raise ValueError(f"MongoDB collection {self.db.name}.{collection}: run {run_id} wrote {expected} records, "
                             f"{found} are there now: a partial read is refused (re-materialize {collection})")

    def read_records(self, collection: str, run_id: str | None = None) -> list[dict]:
        return list(self.iter_records(collection, run_id))

    def count(self, collection: str) -> int:
        return self.db[collection].count_documents({})
