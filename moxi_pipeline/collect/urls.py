"""Repository URLs: normalise the forms git and package metadata use, and read owner/name out of them."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# Hosts whose first two path segments are `owner/name`.
REPO_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org")

_SCP_LIKE = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>(?!//)[^\s]+)$")


def normalize_repo_url(url: str) -> str:
    """`git@github.com:o/r.git`, `https://tok@github.com/o/r/` -> `https://github.com/o/r`.

    Credentials are dropped (an origin URL can carry a token). On a known repository host the URL is
    cut to `owner/name`, so `.../o/r/tree/main/docs` and `.../o/r` are one repository; other URLs keep
    their path minus a trailing `.git` and `/`.
    """
    url = url.strip()
    scp = _SCP_LIKE.match(url)
    if scp and "://" not in url:
        url = f"https://{scp['host']}/{scp['path']}"
    parts = urlsplit(url)
    if parts.scheme in ("ssh", "git", "git+ssh", "git+https", "http"):
        parts = parts._replace(scheme="https")
    host = (parts.hostname or "").lower()
    path = parts.path.rstrip("/")
    path = path[: -len(".git")] if path.endswith(".git") else path
    if host in REPO_HOSTS:
        path = "/" + "/".join(path.strip("/").split("/")[:2])
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    if parts.scheme == "file":
        netloc = ""
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def is_repo_url(url: str) -> bool:
    """True for `https://github.com/owner/name`-like URLs (after normalising), false for docs sites."""
    parts = urlsplit(normalize_repo_url(url))
    return (parts.hostname or "") in REPO_HOSTS and len(parts.path.strip("/").split("/")) == 2


def owner_and_name(url: str) -> tuple[str, str]:
    """(`owner`, `name`) of a repository-host URL; ("", last path segment) for any other URL."""
    parts = urlsplit(normalize_repo_url(url))
    segments = [segment for segment in parts.path.split("/") if segment]
    if is_repo_url(url):
        return segments[0], segments[1]
    return "", segments[-1] if segments else ""
