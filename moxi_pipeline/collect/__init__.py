"""Collect repositories as `RepoRecord`s from one or several sources (the `raw_readmes` asset).

    collect_repos("installed")                     # Python distributions here: offline demo data
    collect_repos("jsonl", "corpus/dev.jsonl")     # records in the collection schema
    collect_repos("local", "~/code")               # one repository, or a folder of them
    collect_repos("github", "o/awesome-x", github=GitHubSource(client, []))   # awesome lists' repositories
    collect_sources([("installed", None), ("jsonl", "extra.jsonl")])           # several, in that order

Order is deterministic: installed by distribution name, local by folder name, jsonl by file order.
Every source normalises repo_url, and a second record of an already-seen repository is skipped (the
first wins). Records are compared by `repo_key` (the URL normalised, owner/name without case on
GitHub-like hosts), so one repository, however its URL is spelled, can never land on both sides of
the train/test split. `limit` stops after that many records. With several sources the first source's
record of a repository wins, each record keeps its own `source`, and a skipped item's label names its
source (`jsonl line 3`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from moxi_pipeline.collect import installed, jsonl, local_repos
from moxi_pipeline.collect.github_repos import GitHubSource
from moxi_pipeline.collect.key_files import (
    MAX_KEY_FILE_CHARS,
    MAX_KEY_FILES,
    rank_key_file_paths,
    read_key_files,
)
from moxi_pipeline.collect.local_repos import RepoSnapshot, scan_repository
from moxi_pipeline.collect.project_type import (
    PROJECT_TYPES,
    detect_project_type,
    guess_language,
)
from moxi_pipeline.collect.result import (
    CollectResult,
    Skipped,
    describe_validation_error,
)
from moxi_pipeline.collect.urls import repo_key
from moxi_pipeline.records import SOURCES, RepoRecord

__all__ = [
    "MAX_KEY_FILES", "MAX_KEY_FILE_CHARS", "PROJECT_TYPES", "CollectResult", "GitHubSource",
    "RepoSnapshot", "Skipped", "collect_repos", "collect_sources", "detect_project_type", "guess_language", "rank_key_file_paths",
    "read_key_files", "scan_repository",
]


def _existing_path(source: str, path: str | None, want_dir: bool) -> Path:
    if path is None:
        raise ValueError(f"path is None: source {source!r} needs a path to a {'folder' if want_dir else 'file'}")
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise ValueError(f"path {path!r} does not exist (source {source!r})")
    if want_dir and not resolved.is_dir():
        raise ValueError(f"path {path!r} is not a folder (source {source!r} needs a repository or a folder of them)")
    if not want_dir and not resolved.is_file():
        raise ValueError(f"path {path!r} is not a file (source {source!r} needs a .json or .jsonl file)")
    return resolved


def _local_record(repo_dir: Path) -> RepoRecord | Skipped:
    if repo_dir.is_symlink():  # it could point anywhere on the disk: never scanned
        return Skipped(str(repo_dir), "a symbolic link to a folder; links are not followed")
    try:
        return local_repos.record_from_repository(repo_dir)
    except OSError as error:  # an unreadable folder or file in one repository must not sink the rest
        return Skipped(str(repo_dir), f"unreadable: {error}")
    except ValidationError as error:
        return Skipped(str(repo_dir), describe_validation_error(error))


def _github_items(path: str | None, limit: int | None, github: GitHubSource | None, progress) -> list:
    if github is None:
        raise ValueError("source 'github' needs a GitHub client (GitHubSource)")
    lists = [part.strip() for part in path.split(";") if part.strip()] if path else None
    run = github.collect(lists, limit=limit, progress=progress)
    return [(r.item if isinstance(r, Skipped) else r.repo_url, lambda r=r: r) for r in run.results]


def _source_items(source: str, path: str | None, limit: int | None = None, github: GitHubSource | None = None,
                  progress=None) -> list[tuple[str, Callable[[], RepoRecord | Skipped]]]:
    """(item label, loader) per candidate, in the source's deterministic order."""
    if source == "github":
        return _github_items(path, limit, github, progress)
    if source == "installed":
        dists = installed.list_distributions([path] if path else None)
        return [(d.metadata["Name"] or str(d), lambda d=d: installed.record_from_distribution(d)) for d in dists]
    if source == "jsonl":
        items = jsonl.read_items(_existing_path(source, path, want_dir=False))
        return [(label, lambda label=label, item=item: jsonl.record_from_item(label, item)) for label, item in items]
    repos = local_repos.find_repositories(_existing_path(source, path, want_dir=True))
    return [(str(repo), lambda repo=repo: _local_record(repo)) for repo in repos]


def collect_repos(
    source: str, path: str | None = None, limit: int | None = None,
    progress: Callable[[int, int], None] | None = None, github: GitHubSource | None = None,
) -> CollectResult:
    """Records from `source`, first repo_url wins, at most `limit`; `progress(done, total)` per item.

    `path`: the .json/.jsonl file for "jsonl", the repository or folder for "local", for "installed"
    an optional site-packages folder to read instead of the running environment, and for "github"
    awesome lists (`;`-separated) over `github.awesome_lists`.
    """
    return collect_sources([(source, path)], limit=limit, progress=progress, github=github)


def collect_sources(
    sources: list[tuple[str, str | None]], limit: int | None = None,
    progress: Callable[[int, int], None] | None = None, github: GitHubSource | None = None,
) -> CollectResult:
    """Records from each (source, path) in turn, deduped across them (module docstring), at most `limit`."""
    for source, path in sources:
        if source not in SOURCES:
            raise ValueError(f"source {source!r} is unknown; choose one of {', '.join(SOURCES)}")
        if source == "installed" and path is not None:
            _existing_path(source, path, want_dir=True)
    if limit is not None and limit < 1:
        raise ValueError(f"limit {limit!r} must be a positive number of records, or None for all")
    prefix = len(sources) > 1
    items = [(f"{source} {label}" if prefix else label, load)
             for source, path in sources for label, load in _source_items(source, path, limit, github, progress)]
    records: list[RepoRecord] = []
    skipped: list[Skipped] = []
    first_by_key: dict[str, tuple[str, str]] = {}  # repo_key -> (item label, repo_url) of the record kept
    for done, (label, load) in enumerate(items, start=1):
        result = load()
        if isinstance(result, Skipped):
            skipped.append(Skipped(label, result.reason) if prefix else result)
        elif (key := repo_key(result.repo_url)) in first_by_key:
            kept, kept_url = first_by_key[key]
            same = "" if kept_url == result.repo_url else f" (same repository as {kept_url!r})"
            skipped.append(Skipped(label, f"duplicate repo_url {result.repo_url!r}{same}; kept {kept}"))
        else:
            first_by_key[key] = (label, result.repo_url)
            records.append(result)
        if progress is not None:
            progress(done, len(items))
        if limit is not None and len(records) >= limit:
            break
    return CollectResult(records=records, skipped=skipped)
