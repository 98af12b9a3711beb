"""What every source hands back: records plus the items it could not use, each with a reason."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from moxi_pipeline.records import RepoRecord


@dataclass(frozen=True)
class Skipped:
    """One source item that produced no record; `item` names it the way the source does."""

    item: str
    reason: str


@dataclass(frozen=True)
class CollectResult:
    records: list[RepoRecord]
    skipped: list[Skipped]


def describe_validation_error(error: ValidationError) -> str:
    """`readme: Value error, readme is empty; file_tree: Field required`: every failing field by name."""
    parts = []
    for detail in error.errors():
        field = ".".join(str(part) for part in detail["loc"]) or "record"
        parts.append(f"{field}: {detail['msg']}")
    return "; ".join(parts)
