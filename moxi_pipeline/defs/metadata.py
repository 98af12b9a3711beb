"""Small helpers that turn domain results into Dagster UI metadata."""

import base64
from collections import Counter
from pathlib import Path

import dagster as dg


def counts_table(values, header: str) -> dg.MetadataValue:
    """A Markdown table of value -> count, most common first."""
    rows = "\n".join(f"| {value} | {count} |" for value, count in Counter(values).most_common())
    return dg.MetadataValue.md(f"| {header} | count |\n|---|---|\n{rows}")


def image(path: str | Path, alt: str) -> dg.MetadataValue:
    """A PNG inlined as a data URI, so the plot shows in the UI without a file server."""
    encoded = base64.b64encode(Path(path).read_bytes()).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


def skipped_table(skipped, limit: int = 50) -> dg.MetadataValue:
    rows = "\n".join(f"| {item.item} | {item.reason} |" for item in skipped[:limit])
    more = f"\n\n… and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return dg.MetadataValue.md(f"| item | reason |\n|---|---|\n{rows}{more}")
