"""Small helpers that turn domain results into Dagster UI metadata, and fail an asset that skipped too much."""

import base64
import re
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


def reason_kind(reason: str) -> str:
    """A reason without its particulars, so skips for one cause count together:
    `description has 7 chars, fewer than 500` -> `description has … chars, fewer than …`,
    `duplicate repo_url 'https://…'; kept line 3` -> `duplicate repo_url …`."""
    return re.sub(r"'[^']*'|\"[^\"]*\"|\d+", "…", reason.split(";")[0]).strip()


def skip_metadata(skipped, kept: int) -> dict:
    """How many items were skipped, their share of all items, counts by reason and the items themselves."""
    total = kept + len(skipped)
    return {
        "skipped": len(skipped),
        "skipped_share": round(len(skipped) / total, 4) if total else 0.0,
        "skip_reasons": counts_table((reason_kind(item.reason) for item in skipped), "reason"),
        "skipped_items": skipped_table(skipped),
    }


def fail_past_skip_share(asset: str, skipped, kept: int, max_share: float) -> None:
    """Raise dg.Failure, with the skip metadata attached, when nothing was kept or skips pass `max_share`."""
    total = kept + len(skipped)
    reasons = "; ".join(f"{count} x {kind}" for kind, count in
                        Counter(reason_kind(item.reason) for item in skipped).most_common(3))
    if total == 0:
        problem = "found no items at all"
    elif kept == 0:
        problem = f"kept nothing: all {total} items were skipped ({reasons})"
    elif len(skipped) / total > max_share:
        problem = (f"skipped {len(skipped)} of {total} items ({len(skipped) / total:.0%}), over "
                   f"max_skipped_share={max_share:g}; most common: {reasons}")
    else:
        return
    raise dg.Failure(description=f"{asset} {problem}", metadata=skip_metadata(skipped, kept))


def github_metadata(github) -> dict:
    """API calls (total, per repository, by kind), unchanged repositories, retries and failures of a GitHub run."""
    client, run = github.client, github.run
    fetched = len(run.records) + len(run.skipped)
    return {
        "github_repositories_listed": len(github.repo_urls),
        "github_repositories_unchanged": run.unchanged,
        "github_failed": len(run.skipped),
        "github_collected": len(run.records),
        "api_calls": client.total_calls,
        "api_calls_per_repo": round(client.total_calls / fetched, 2) if fetched else 0.0,
        "api_calls_by_kind": counts_table(client.calls.elements(), "call"),
        "api_retries": client.retries,
        "api_waited_s": round(client.waited_s, 1),
    }
