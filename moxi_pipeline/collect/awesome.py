"""Awesome lists -> the GitHub repositories they link to.

A list is named one of three ways (`read_awesome_list`):
- a local markdown file: `docs/awesome.md` (any path that exists);
- a raw URL: `https://raw.githubusercontent.com/o/awesome-x/main/README.md` (fetched without the token);
- a list's own repository, `owner/repo` or `https://github.com/owner/repo`: its README through the API.

`repo_links` keeps links of the form `https://github.com/<owner>/<repo>` (any case, `www.`, `http`,
a trailing `/`, `.git`, `#anchor` or `?query`), normalised, deduped case-insensitively, first spelling
and order kept. It leaves out what is not a repository: profiles (`github.com/user`), deeper pages
(issues, pulls, wiki, blob, tree, releases, assets), GitHub's own pages (`github.com/sponsors/x`,
`topics`, `orgs`, `marketplace` ...), gists and other hosts (`gist.github.com`,
`user-images.githubusercontent.com`), and in-page anchors (`#contents`).
"""

from __future__ import annotations

import re
from pathlib import Path

from moxi_pipeline.collect.github import (
    GitHubClient,
    GitHubError,
    RepoFailed,
    decode_readme,
)
from moxi_pipeline.collect.urls import repo_key

# GitHub's own top-level pages: `github.com/<one of these>/<x>` is never a repository.
RESERVED_OWNERS = {
    "about", "apps", "collections", "contact", "customer-stories", "enterprise", "events", "explore", "features",
    "login", "marketplace", "new", "notifications", "orgs", "organizations", "pricing", "pulls", "issues",
    "search", "security", "settings", "site", "sponsors", "topics", "trending", "users", "readme", "codespaces",
}
# (?<![\w.-]) keeps `gist.github.com` and `api.github.com` out; the path ends at what markdown or HTML ends a URL with.
_GITHUB_URL = re.compile(r"(?<![\w.-])(?:https?://)?(?:www\.)?github\.com/([^\s)\]>\"'`<]*)", re.IGNORECASE)
_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_LIST_REPO = re.compile(r"^(?:https?://(?:www\.)?github\.com/)?([A-Za-z0-9-]+)/([A-Za-z0-9._-]+?)/?$", re.IGNORECASE)


def _repo_of(path: str) -> str | None:
    """`owner/name` when the URL path after `github.com/` is a repository's root page, else None."""
    path = re.split(r"[#?]", path, maxsplit=1)[0].rstrip("/")
    parts = path.split("/")
    if len(parts) != 2:
        return None
    owner, name = parts[0], parts[1]
    name = name[:-4] if name.lower().endswith(".git") else name
    if owner.lower() in RESERVED_OWNERS or not _OWNER.match(owner) or not _NAME.match(name) or name in (".", ".."):
        return None
    return f"{owner}/{name}"


def repo_links(markdown: str) -> list[str]:
    """`https://github.com/<owner>/<repo>` for each repository linked, deduped without case, in order."""
    seen: set[str] = set()
    links: list[str] = []
    for match in _GITHUB_URL.finditer(markdown):
        repo = _repo_of(match.group(1))
        if repo is None:
            continue
        url = f"https://github.com/{repo}"
        if (key := repo_key(url)) not in seen:
            seen.add(key)
            links.append(url)
    return links


def read_awesome_list(spec: str, client: GitHubClient) -> str:
    """The markdown of one list (module docstring); ValueError naming `spec` when it cannot be read."""
    spec = spec.strip()
    path = Path(spec).expanduser()
    if path.is_file():
        return path.read_text(encoding="utf-8", errors="replace")
    if match := _LIST_REPO.match(spec):
        return _list_readme(client, match.group(1), match.group(2), spec)
    if spec.lower().startswith(("http://", "https://")):
        try:
            reply = client.get(spec, kind="awesome_list", accept="text/plain")
        except GitHubError as error:
            raise ValueError(f"awesome list {spec!r}: {error}") from None
        if reply.status != 200 or reply.data is None:
            raise ValueError(f"awesome list {spec!r}: HTTP {reply.status}")
        return str(reply.data)
    raise ValueError(f"awesome list {spec!r} is neither a file that exists, an http(s) URL nor owner/repo")


def _list_readme(client: GitHubClient, owner: str, name: str, spec: str) -> str:
    try:
        reply = client.get(f"/repos/{owner}/{name}/readme", kind="awesome_list")
    except GitHubError as error:
        raise ValueError(f"awesome list {spec!r}: {error}") from None
    if reply.status != 200 or not isinstance(reply.data, dict):
        raise ValueError(f"awesome list {spec!r}: no such file, and as owner/repo its README answered HTTP {reply.status}")
    try:
        return decode_readme(reply.data)[1]
    except RepoFailed as error:
        raise ValueError(f"awesome list {spec!r}: {error}") from None


def awesome_repo_urls(specs: list[str], client: GitHubClient) -> list[str]:
    """Repository URLs of every list in `specs`, deduped across lists, the lists themselves left out."""
    seen: set[str] = set()
    urls: list[str] = []
    for spec in specs:
        own = _LIST_REPO.match(spec.strip())
        if own:
            seen.add(repo_key(f"https://github.com/{own.group(1)}/{own.group(2)}"))
        for url in repo_links(read_awesome_list(spec, client)):
            if (key := repo_key(url)) not in seen:
                seen.add(key)
                urls.append(url)
    return urls


def split_specs(value: str | None) -> list[str]:
    """`a/b, ./list.md` -> ["a/b", "./list.md"]: lists are comma-separated, blanks dropped."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]
