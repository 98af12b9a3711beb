"""The `github` source: repositories fetched through `GitHubClient` into `RepoRecord`s, incrementally.

Per repository, in this order (a first run costs 4 calls with a token, 4 + one per key file without):
1. `GET /repos/{o}/{r}/commits/HEAD` (bare sha, with the ETag of the last run): the default branch's
   head. A 304, or the sha the last run saw, means unchanged: the stored record is reused, so an
   unchanged re-run costs one call per repository (`If-None-Match` 304s are free of rate limit).
2. `GET /repos/{o}/{r}/readme`: the README under whatever name GitHub reports, base64-decoded.
3. `GET /repos/{o}/{r}/git/trees/{sha}?recursive=1`: the file tree; `truncated` is recorded.
4. Metadata (stars, language, license, topics, default branch, pushed_at, description) and key files, by
   the `local` source's rule (`key_files.rank_key_file_paths`, at most 6, each cut to 4000 characters;
   binary or non-UTF-8 passed over):
   - with a token, one GraphQL call: `repository {...}` plus `object(expression: "<sha>:<path>")` for the
     best 12 candidates;
   - without (GitHub's GraphQL needs one), `GET /repos/{o}/{r}` and `GET /repos/{o}/{r}/contents/{path}?ref={sha}`
     per candidate until 6 are read.

A repository that yields no record is a `Skipped` with its reason, and the run goes on: not found,
forbidden or unavailable (404/403/451), empty (409, no commits), no README, a README that is binary,
over `MAX_README_BYTES`, not UTF-8 or blank, or a call that failed after its retries. Failed
repositories are not remembered, so the next run tries them again.

The state of the last run (`GitHubState`: per repository the head sha, its ETag and the record) is a
plain dict the caller persists; nothing here writes files.
"""

from __future__ import annotations

import base64
import codecs
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from pydantic import ValidationError

from moxi_pipeline.collect.awesome import awesome_repo_urls
from moxi_pipeline.collect.github import (
    SHA_ACCEPT,
    GitHubClient,
    GitHubError,
    RepoFailed,
    decode_readme,
)
from moxi_pipeline.collect.key_files import (
    MAX_KEY_FILE_CHARS,
    MAX_KEY_FILES,
    rank_key_file_paths,
)
from moxi_pipeline.collect.local_repos import (
    LINK_MARKER,
    SKIPPED_DIRS,
)
from moxi_pipeline.collect.project_type import detect_project_type
from moxi_pipeline.collect.result import Skipped, describe_validation_error
from moxi_pipeline.collect.urls import owner_and_name, repo_key
from moxi_pipeline.records import GitHubInfo, KeyFile, RepoRecord, SampleInput
from moxi_pipeline.storage.record_files import LocalStore

_STATUS_REASONS = {
    404: "not found (404): deleted, renamed away or private",
    403: "forbidden (403): private or blocked",
    451: "unavailable for legal reasons (451)",
    409: "empty repository (409): no commits",
}


@dataclass
class GitHubRun:
    """What one collection returns: records and skips in input order, the new state, and counts."""

    records: list[RepoRecord] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    state: dict[str, dict] = field(default_factory=dict)  # repo_key -> {"sha", "etag", "record"}
    unchanged: int = 0
    results: list[RepoRecord | Skipped] = field(default_factory=list)  # both, in input order


def _status_reason(what: str, status: int) -> str:
    return f"{what}: {_STATUS_REASONS.get(status, f'unexpected status {status}')}"


def _head(client: GitHubClient, base: str, previous: dict | None) -> tuple[str | None, str | None]:
    """(sha, etag) of the default branch's head; sha None means unchanged since `previous` (304)."""
    reply = client.get(f"{base}/commits/HEAD", kind="commit", accept=SHA_ACCEPT, etag=previous and previous.get("etag"))
    if reply.status == 304:
        return None, reply.etag or previous.get("etag")
    if reply.status != 200 or not isinstance(reply.data, str) or not reply.data.strip():
        raise RepoFailed(_status_reason("head commit", reply.status))
    return reply.data.strip(), reply.etag


def tree_paths(entries: list) -> tuple[str, ...]:
    """Files of a git tree as the `local` source lists them: sorted, links as `path@`, vendored folders left out."""
    paths = []
    for entry in entries:
        path, kind = str(entry.get("path") or ""), entry.get("type")
        if not path or kind not in ("blob", "commit") or set(path.split("/")[:-1]) & SKIPPED_DIRS:
            continue
        paths.append(path + LINK_MARKER if entry.get("mode") == "120000" else path)
    return tuple(sorted(paths))


def _key_file(client: GitHubClient, base: str, path: str, sha: str) -> KeyFile | None:
    reply = client.get(f"{base}/contents/{quote(path)}", kind="contents", params={"ref": sha})
    if reply.status != 200 or not isinstance(reply.data, dict) or reply.data.get("encoding") != "base64":
        return None
    raw = base64.b64decode(str(reply.data.get("content") or ""))[: MAX_KEY_FILE_CHARS * 4]
    if b"\0" in raw:
        return None
    try:  # the incremental decoder tolerates a character cut at the byte cap
        text = codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)
    except UnicodeDecodeError:
        return None
    return KeyFile(path=path, content=text[:MAX_KEY_FILE_CHARS])


def _key_files(client: GitHubClient, base: str, file_tree: tuple[str, ...], sha: str, name: str) -> tuple[KeyFile, ...]:
    chosen: list[KeyFile] = []
    for path in rank_key_file_paths([p for p in file_tree if not p.endswith(LINK_MARKER)], project=name):
        if len(chosen) >= MAX_KEY_FILES:
            break
        if (key_file := _key_file(client, base, path, sha)) is not None:
            chosen.append(key_file)
    return tuple(chosen)


def _get_ok(client: GitHubClient, path: str, kind: str, what: str, **params) -> dict:
    reply = client.get(path, kind=kind, params=params or None)
    if reply.status != 200 or not isinstance(reply.data, dict):
        raise RepoFailed(_status_reason(what, reply.status) if reply.status != 200 else f"{what}: not a JSON object")
    return reply.data


@dataclass(frozen=True)
class RemoteRepo:
    """One repository as the API shows it, README or not: what `moxi analyze` prints and `moxi generate` reads."""

    repo_url: str
    owner: str
    repo: str
    readme: str | None
    file_tree: tuple[str, ...]
    key_files: tuple[KeyFile, ...]
    language: str | None
    license: str | None
    project_type: str
    github: GitHubInfo

    def sample_input(self) -> SampleInput:
        return SampleInput(file_tree=self.file_tree, project_type=self.project_type, key_files=self.key_files)


def _readme(client: GitHubClient, base: str, need_readme: bool) -> tuple[str | None, str | None]:
    reply = client.get(f"{base}/readme", kind="readme")
    if reply.status == 404 and not need_readme:
        return None, None
    if reply.status == 404:
        raise RepoFailed("no README")
    if reply.status != 200 or not isinstance(reply.data, dict):
        raise RepoFailed(_status_reason("README", reply.status))
    try:
        return decode_readme(reply.data)
    except RepoFailed:
        if need_readme:
            raise
        return str(reply.data.get("path") or "README"), None


MAX_GRAPHQL_CANDIDATES = 12  # key-file candidates asked for in the one GraphQL call; the best 6 readable are kept
_REPO_QUERY = """query($owner: String!, $name: String!%s) {
  repository(owner: $owner, name: $name) {
    nameWithOwner stargazerCount description pushedAt
    primaryLanguage { name } licenseInfo { spdxId } defaultBranchRef { name }
    repositoryTopics(first: 20) { nodes { topic { name } } }
%s
  }
}"""


def _graphql_meta_and_key_files(client: GitHubClient, owner: str, name: str, sha: str,
                                file_tree: tuple[str, ...]) -> tuple[dict, tuple[KeyFile, ...]]:
    """Metadata (in the REST shape) and key files in one GraphQL call, instead of 1 + up to 6 REST calls."""
    candidates = rank_key_file_paths([p for p in file_tree if not p.endswith(LINK_MARKER)], project=name)
    candidates = candidates[:MAX_GRAPHQL_CANDIDATES]
    params = "".join(f", $e{i}: String!" for i in range(len(candidates)))
    blobs = "\n".join(f"    f{i}: object(expression: $e{i}) {{ ... on Blob {{ text isBinary }} }}" for i in range(len(candidates)))
    variables = {"owner": owner, "name": name, **{f"e{i}": f"{sha}:{path}" for i, path in enumerate(candidates)}}
    repo = client.graphql(_REPO_QUERY % (params, blobs), variables).get("repository")
    if not isinstance(repo, dict):
        raise RepoFailed("repository: not found through GraphQL")
    meta = {
        "full_name": repo.get("nameWithOwner"), "stargazers_count": repo.get("stargazerCount"),
        "description": repo.get("description"), "pushed_at": repo.get("pushedAt"),
        "language": (repo.get("primaryLanguage") or {}).get("name"),
        "license": {"spdx_id": (repo.get("licenseInfo") or {}).get("spdxId")},
        "default_branch": (repo.get("defaultBranchRef") or {}).get("name"),
        "topics": [n["topic"]["name"] for n in (repo.get("repositoryTopics") or {}).get("nodes") or []],
    }
    key_files = []
    for i, path in enumerate(candidates):
        blob = repo.get(f"f{i}") or {}
        text = blob.get("text")
        if len(key_files) < MAX_KEY_FILES and isinstance(text, str) and not blob.get("isBinary") and "\0" not in text:
            key_files.append(KeyFile(path=path, content=text[:MAX_KEY_FILE_CHARS]))
    return meta, tuple(key_files)


def fetch_repository(client: GitHubClient, owner: str, name: str, sha: str, need_readme: bool = True) -> RemoteRepo:
    """`owner/name` at commit `sha`; without `need_readme` a README may be missing.

    With a token: README, tree, then metadata and key files in one GraphQL call (4 calls with step 1).
    Without one (GitHub's GraphQL needs a token): README, tree, metadata and a REST call per key file.
    """
    base = f"/repos/{quote(owner)}/{quote(name)}"
    readme_path, readme = _readme(client, base, need_readme)
    tree = _get_ok(client, f"{base}/git/trees/{sha}", "tree", "tree", recursive="1")
    file_tree = tree_paths(tree.get("tree") or [])
    if client.has_token:
        meta, key_files = _graphql_meta_and_key_files(client, owner, name, sha, file_tree)
    else:
        meta = _get_ok(client, base, "repo", "repository")
        key_files = None
    full_owner, _, full_name = str(meta.get("full_name") or f"{owner}/{name}").partition("/")
    if key_files is None:
        key_files = _key_files(client, base, file_tree, sha, full_name)
    license_id = (meta.get("license") or {}).get("spdx_id")
    info = GitHubInfo(
        stars=meta.get("stargazers_count"), topics=tuple(meta.get("topics") or ()), default_branch=meta.get("default_branch"),
        pushed_at=meta.get("pushed_at"), description=meta.get("description"), commit=sha, readme_path=readme_path,
        tree_truncated=bool(tree.get("truncated")),
    )
    language = meta.get("language")
    return RemoteRepo(
        repo_url=f"https://github.com/{full_owner}/{full_name}", owner=full_owner, repo=full_name, readme=readme,
        file_tree=file_tree, key_files=key_files, language=language,
        license=None if license_id in (None, "NOASSERTION") else license_id,
        project_type=detect_project_type(file_tree, key_files, language), github=info,
    )


def fetch_record(client: GitHubClient, owner: str, name: str, sha: str) -> RepoRecord:
    """The `readme_samples` record of `owner/name` at commit `sha`; `RepoFailed` without a usable README."""
    repo = fetch_repository(client, owner, name, sha)
    fields = {k: getattr(repo, k) for k in ("repo_url", "owner", "repo", "readme", "file_tree", "key_files", "language",
                                           "license", "project_type", "github")}
    return RepoRecord(**fields, source="github")


def analyze_github(client: GitHubClient, url: str) -> RemoteRepo:
    """One repository by URL, for `moxi analyze` and `moxi generate`; ValueError naming the URL when it fails."""
    owner, name = owner_and_name(url)
    if not owner:
        raise ValueError(f"{url!r} is not a GitHub repository URL (https://github.com/<owner>/<repo>)")
    try:
        sha, _ = _head(client, f"/repos/{quote(owner)}/{quote(name)}", None)
        return fetch_repository(client, owner, name, sha, need_readme=False)
    except (RepoFailed, GitHubError) as error:
        raise ValueError(f"{url}: {error}") from None


def collect_repository(client: GitHubClient, url: str, previous: dict | None) -> tuple[RepoRecord | Skipped, dict | None, bool]:
    """(record or Skipped, new state entry or None, unchanged?) for one repository URL."""
    owner, name = owner_and_name(url)
    try:
        sha, etag = _head(client, f"/repos/{quote(owner)}/{quote(name)}", previous)
        if previous and (sha is None or sha == previous.get("sha")):
            return RepoRecord.model_validate(previous["record"]), {**previous, "etag": etag}, True
        record = fetch_record(client, owner, name, sha)
    except (RepoFailed, GitHubError) as error:
        return Skipped(url, str(error)), None, False
    except ValidationError as error:
        return Skipped(url, describe_validation_error(error)), None, False
    except (TypeError, AttributeError, KeyError, ValueError) as error:  # JSON of a shape GitHub never sends
        return Skipped(url, f"unexpected answer: {type(error).__name__}: {error}"), None, False
    return record, {"sha": sha, "etag": etag, "record": record.to_dict()}, False


def collect_github(
    client: GitHubClient, repo_urls: list[str], state: dict[str, dict] | None = None, concurrency: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> GitHubRun:
    """Every URL collected once, `concurrency` at a time; results keep the input order.

    `state` is the previous run's `GitHubRun.state`; repositories not in this run keep their entry.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency {concurrency!r} must be at least 1")
    state = dict(state or {})
    run = GitHubRun(state=state)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="github") as pool:
        futures = [pool.submit(collect_repository, client, url, state.get(repo_key(url))) for url in repo_urls]
        for done, (url, future) in enumerate(zip(repo_urls, futures), start=1):
            result, entry, unchanged = future.result()
            run.results.append(result)
            if isinstance(result, Skipped):
                run.skipped.append(result)
            else:
                run.records.append(result)
                state[repo_key(url)] = entry
            run.unchanged += unchanged
            if progress is not None:
                progress(done, len(repo_urls))
    return run


@dataclass
class GitHubSource:
    """The `github` source's inputs (client, lists, last state) and, once collected, its `run`."""

    client: GitHubClient
    awesome_lists: list[str]
    state: dict[str, dict] = field(default_factory=dict)
    concurrency: int = 8
    repo_urls: list[str] = field(default_factory=list)
    run: GitHubRun | None = None

    def collect(self, lists: list[str] | None = None, limit: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> GitHubRun:
        """Parse the lists (`lists` over `awesome_lists`), then fetch at most `limit` of their repositories."""
        specs = lists or self.awesome_lists
        if not specs:
            raise ValueError("source 'github' needs awesome lists: set MOXI_GITHUB_AWESOME_LISTS or give github:<list>")
        self.repo_urls = awesome_repo_urls(specs, self.client)
        urls = self.repo_urls[:limit] if limit is not None else self.repo_urls
        self.run = collect_github(self.client, urls, self.state, self.concurrency, progress)
        return self.run


STATE_NAME = "github_state"  # <data dir>/records/github_state.jsonl: one line per repository collected


def load_state(data_dir: str | Path) -> dict[str, dict]:
    """The last run's state (empty before the first run) from the local store under `data_dir`."""
    store = LocalStore(data_dir)
    if not store.records_path(STATE_NAME).is_file():
        return {}
    return {row["key"]: {k: v for k, v in row.items() if k != "key"} for row in store.read_records(STATE_NAME)}


def save_state(data_dir: str | Path, state: dict[str, dict]) -> Path:
    """Written atomically, so a crash mid-write keeps the previous state whole."""
    return LocalStore(data_dir).write_records(STATE_NAME, ({"key": key, **entry} for key, entry in sorted(state.items())))
