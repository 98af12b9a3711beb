"""Plain-Python stores (no dagster): the I/O managers in defs/ only pick a store and a name."""

from moxi_pipeline.storage.record_files import LocalStore

__all__ = ["LocalStore"]
