"""The I/O manager works out a name from the asset key and hands records to a store. No business rules."""

import typing
from pathlib import Path

import dagster as dg
from pydantic import SecretStr

from moxi_pipeline.records import Artifact, Record
from moxi_pipeline.settings import load_settings
from moxi_pipeline.storage import LocalStore
from moxi_pipeline.storage.mongo import MongoStore


def _record_type(context: dg.InputContext) -> type[Record]:
    """`list[SftSample]` -> SftSample, `Artifact` -> Artifact, read from the input's type annotation."""
    typing_type = context.dagster_type.typing_type
    args = typing.get_args(typing_type)
    record_type = args[0] if args else typing_type
    if not (isinstance(record_type, type) and issubclass(record_type, Record)):
        raise TypeError(f"input {context.name!r} must be annotated with a Record or list of Records, got {typing_type}")
    return record_type


class LocalRecordIOManager(dg.ConfigurableIOManager):
    """Lists of records to `data/records/<asset>.jsonl`; artifacts to `data/artifacts/<asset>.json`."""

    data_dir: str

    def _relative(self, path: str) -> str:
        """A path inside the data folder is stored relative to it, so the folder can move."""
        resolved, root = Path(path).resolve(), Path(self.data_dir).resolve()
        return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(resolved)

    def _store(self) -> LocalStore:
        return LocalStore(self.data_dir)

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        name = context.asset_key.to_user_string()
        if isinstance(obj, Artifact):
            path = self._store().write_json(name, {**obj.to_dict(), "path": self._relative(obj.path)})
        elif isinstance(obj, list) and all(isinstance(row, Record) for row in obj):
            path = self._store().write_records(name, (row.to_dict() for row in obj))
        else:
            raise TypeError(f"asset {name!r} returned {type(obj).__name__}; expected an Artifact or a list of records")
        context.add_output_metadata({"stored_at": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext):
        name = context.asset_key.to_user_string()
        record_type = _record_type(context)
        if record_type is Artifact:
            row = self._store().read_json(name)
            return Artifact.model_validate({**row, "path": str(Path(self.data_dir) / row["path"])})
        return [record_type.model_validate(row) for row in self._store().read_records(name)]


# Asset -> MongoDB collection, named as in the seed.
COLLECTIONS = {"raw_readmes": "readme_samples", "readme_chunks": "readme_chunks", "sft_dataset": "sft_samples"}


class MongoRecordIOManager(LocalRecordIOManager):
    """Lists of records to MongoDB (`COLLECTIONS`, upserted by natural key); artifacts stay local files.

    The URI comes from settings (MONGODB_URI) when `uri` is unset, so a password never sits in run config.
    """

    uri: str | None = None
    db_name: str = "moxi"

    def _mongo(self) -> MongoStore:
        uri = self.uri or (load_settings().mongodb_uri or SecretStr("")).get_secret_value()
        if not uri:
            raise ValueError("MONGODB_URI is not set: the MongoDB I/O manager has nowhere to write")
        return MongoStore(uri, self.db_name)

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        name = context.asset_key.to_user_string()
        if not (isinstance(obj, list) and all(isinstance(row, Record) for row in obj)):
            return super().handle_output(context, obj)
        collection = COLLECTIONS.get(name, name)
        with self._mongo() as store:
            summary = store.write_records(collection, (row.to_dict() for row in obj), run_id=context.run_id)
        context.add_output_metadata({"mongodb_collection": f"{self.db_name}.{collection}", "mongodb_written": summary.written,
                                     "mongodb_inserted": summary.inserted, "mongodb_replaced": summary.replaced})

    def load_input(self, context: dg.InputContext):
        record_type = _record_type(context)
        if record_type is Artifact:
            return super().load_input(context)
        name = context.asset_key.to_user_string()
        with self._mongo() as store:
            return [record_type.model_validate(row) for row in store.iter_records(COLLECTIONS.get(name, name))]


def record_io_manager(settings) -> dg.ConfigurableIOManager:
    """MongoDB when MONGODB_URI is set, else the local store (the default)."""
    data_dir = str(settings.data_dir)
    if settings.mongodb_uri is not None:
        return MongoRecordIOManager(data_dir=data_dir, db_name=settings.mongodb_db_name)
    return LocalRecordIOManager(data_dir=data_dir)
