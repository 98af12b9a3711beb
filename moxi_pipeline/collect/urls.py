"""Repository URLs: normalise the forms git and package metadata use, and read owner/name out of them.

One repository has many spellings: `git@github.com:O/R.git`, `http://www.github.com/o/r/`,
`github.com/o/r#readme`. `normalize_repo_url` maps them all to `https://github.com/O/R` (the case as
given, for display), and `repo_key` to `https://github.com/o/r`: repository hosts ignore the case of
owner and name, so the key is what the sources dedupe on and what keeps one repository on one side
of the train/test split.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# Hosts whose first two path segments are `owner/name`, compared without case by the host itself.
REPO_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org")

_SCP_LIKE = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>(?!//)[^\s]+)$")
_NETWORK_SCHEMES = ("https", "http", "ssh", "git", "git+ssh", "git+https")


def _host_of(netloc_host: str) -> str:
    host = netloc_host.lower()
    return host.removeprefix("www.") if host.removeprefix("www.") in REPO_HOSTS else host


def normalize_repo_url(url: str) -> str:
    """`git@github.com:o/r.git`, `https://tok@www.github.com/o/r/` -> `https://github.com/o/r`.

    Credentials, query and fragment are dropped (an origin URL can carry a token). On a known repository
    host the URL is cut to `owner/name`, so `.../o/r/tree/main/docs` and `.../o/r` are one repository;
    other URLs keep their path minus a trailing `.git` and `/`. A bare `github.com/o/r` gets https.
    """
    url = url.strip()
    scp = _SCP_LIKE.match(url)
    if scp and "://" not in url:
        url = f"https://{scp['host']}/{scp['path']}"
    elif "://" not in url and _host_of(url.split("/", 1)[0]) in REPO_HOSTS:
        url = f"https://{url}"
    parts = urlsplit(url)
    if parts.scheme in _NETWORK_SCHEMES:
        parts = parts._replace(scheme="https")
    host = _host_of(parts.hostname or "")
    path = parts.path.rstrip("/")
    path = path[: -len(".git")] if path.lower().endswith(".git") else path
    if host in REPO_HOSTS:
        path = "/" + "/".join(path.strip("/").split("/")[:2])
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    if parts.scheme == "file":
        netloc = ""
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def repo_key(url: str) -> str:
    """The identity two spellings of one repository share: normalised, owner/name lower-cased on `REPO_HOSTS`."""
    normalized = normalize_repo_url(url)
    return normalized.lower() if is_repo_url(normalized) else normalized


def is_repo_url(url: str) -> bool:
    """True for `https://github.com/owner/name`-like URLs (after normalising), false for docs sites."""
    parts = urlsplit(normalize_repo_url(url))
    return (parts.hostname or "") in REPO_HOSTS and len(parts.path.strip("/").split("/")) == 2


def is_network_url(url: str) -> bool:
    """True for a remote on another machine (https, ssh, git or `host:path`); false for a local path or file://."""
    parts = urlsplit(normalize_repo_url(url))
    return parts.scheme == "https" and bool(parts.hostname)


def owner_and_name(url: str) -> tuple[str, str]:
    """(`owner`, `name`) of a repository-host URL; ("", last path segment) for any other URL."""
    parts = urlsplit(normalize_repo_url(url))
    segments = [segment for segment in parts.path.split("/") if segment]
    if is_repo_url(url):
        return segments[0], segments[1]
    return "", segments[-1] if segments else ""
