"""A fake GitHub REST API on 127.0.0.1: real HTTP, GitHub's wire format, and faults on demand.

    with FakeGitHub({"octo/hello": FakeRepo(readme="# Hello", files={"setup.py": "..."})}) as fake:
        fake.fail("/repos/octo/hello/readme", "503", "429")   # the next two calls there fail so
        client = GitHubClient(fake.url, token="t")

Endpoints, answered as api.github.com answers them:
- GET /repos/{o}/{r}                           metadata (404 when unknown or private, any case of o/r)
- GET /repos/{o}/{r}/commits/HEAD              the head sha (Accept: application/vnd.github.sha), ETag, 304
                                               on If-None-Match; 409 for an empty repository
- GET /repos/{o}/{r}/readme                    {"name", "path", "size", "encoding": "base64", "content"}
                                               (base64 in 60-character lines, as GitHub sends it); 404 without one;
                                               over 1 MB: "encoding": "none" and empty content
- GET /repos/{o}/{r}/git/trees/{sha}?recursive=1   {"sha", "tree": [{"path", "mode", "type"}], "truncated"}
- GET /repos/{o}/{r}/contents/{path}?ref=      one file, base64
- GET /raw/{name}                              an awesome list's markdown (`lists`), as raw.githubusercontent serves it
- POST /graphql                                `repository(owner:, name:)` with its metadata and aliased
                                               `fN: object(expression: $eN) { ... on Blob { text isBinary } }`;
                                               401 without a token, as GitHub answers
Every answer carries X-RateLimit-Limit/Remaining/Reset. Requests are recorded with their headers.

Faults (`fail(path, *faults)`, consumed one per request to that exact path, in order):
"429" (Retry-After: 2), "403-secondary" (secondary limit text, Retry-After: 3), "403-primary"
(X-RateLimit-Remaining: 0 and a Reset 5 s ahead), "500", "502", "503", "stall" (sleeps `stall_s`
before answering, past the client's timeout), "malformed" (a 200 with cut-off JSON), "wrong-shape"
(a 200 with JSON of another shape), "404".
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class FakeRepo:
    readme: str | bytes | None = "# Project\n\nA project.\n"
    readme_name: str = "README.md"
    files: dict[str, str | bytes] = field(default_factory=dict)
    sha: str = "a" * 40
    language: str | None = "Python"
    stars: int = 42
    topics: tuple[str, ...] = ()
    license: str | None = "MIT"
    description: str | None = "A project."
    empty: bool = False  # no commits: commits and trees answer 409
    private: bool = False  # unauthenticated or not: 404, as GitHub hides private repositories
    truncated: bool = False
    symlinks: tuple[str, ...] = ()


class FakeGitHub:
    def __init__(self, repos: dict[str, FakeRepo], lists: dict[str, str] | None = None, *,
                 stall_s: float = 2.0, latency_s: float = 0.0):
        self.repos = {name.lower(): (name, repo) for name, repo in repos.items()}
        self.lists = lists or {}
        self.stall_s, self.latency_s = stall_s, latency_s
        self.requests: list[tuple[str, dict]] = []  # (path with query, headers)
        self._faults: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self.remaining = 5000
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeGitHub:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, path: str, *faults: str) -> None:
        with self._lock:
            self._faults.setdefault(path, []).extend(faults)

    def next_fault(self, path: str) -> str | None:
        with self._lock:
            queue = self._faults.get(path)
            return queue.pop(0) if queue else None

    def paths(self, contains: str = "") -> list[str]:
        return [path for path, _ in self.requests if contains in path]

    def answer(self, path: str, query: dict, headers) -> tuple[int, dict, bytes]:
        """(status, extra headers, body) for one GET, faults aside."""
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[0] == "raw" and len(parts) == 2 and parts[1] in self.lists:
            return 200, {"Content-Type": "text/plain; charset=utf-8"}, self.lists[parts[1]].encode()
        if parts[0] != "repos" or len(parts) < 3 or (parts[1] + "/" + parts[2]).lower() not in self.repos:
            return _json(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        full_name, repo = self.repos[(parts[1] + "/" + parts[2]).lower()]
        if repo.private:
            return _json(404, {"message": "Not Found"})
        rest = parts[3:]
        if not rest:
            return _json(200, _metadata(full_name, repo))
        if rest[0] == "commits" and len(rest) == 2:
            if repo.empty:
                return _json(409, {"message": "Git Repository is empty."})
            etag = f'"{repo.sha}"'
            if headers.get("If-None-Match") == etag:
                return 304, {"ETag": etag}, b""
            if headers.get("Accept") == "application/vnd.github.sha":
                return 200, {"ETag": etag, "Content-Type": "text/plain"}, repo.sha.encode()
            return _json(200, {"sha": repo.sha}, {"ETag": etag})
        if rest == ["readme"]:
            if repo.readme is None:
                return _json(404, {"message": "Not Found"})
            return _json(200, _content(repo.readme_name, repo.readme))
        if rest[:2] == ["git", "trees"]:
            if repo.empty:
                return _json(409, {"message": "Git Repository is empty."})
            return _json(200, _tree(repo, recursive=query.get("recursive") == ["1"]))
        if rest[0] == "contents":
            wanted = "/".join(rest[1:])
            if wanted not in repo.files:
                return _json(404, {"message": "Not Found"})
            return _json(200, _content(wanted, repo.files[wanted]))
        return _json(404, {"message": "Not Found"})


_BLOB_ALIAS = re.compile(r"(f\d+): object\(expression: \$(e\d+)\)")


def _graphql(fake: FakeGitHub, body: dict, headers) -> tuple[int, dict, bytes]:
    if not headers.get("Authorization"):
        return _json(401, {"message": "This endpoint requires you to be authenticated."})
    variables = body.get("variables") or {}
    key = f"{variables.get('owner')}/{variables.get('name')}".lower()
    if key not in fake.repos or fake.repos[key][1].private:
        return _json(200, {"data": {"repository": None}, "errors": [{"type": "NOT_FOUND", "message": f"Could not resolve to a Repository with the name '{key}'."}]})
    full_name, repo = fake.repos[key]
    meta = _metadata(full_name, repo)
    answer = {
        "nameWithOwner": full_name, "stargazerCount": repo.stars, "description": repo.description,
        "pushedAt": meta["pushed_at"], "primaryLanguage": {"name": repo.language} if repo.language else None,
        "licenseInfo": {"spdxId": repo.license} if repo.license else None, "defaultBranchRef": {"name": "main"},
        "repositoryTopics": {"nodes": [{"topic": {"name": t}} for t in repo.topics]},
    }
    for alias, variable in _BLOB_ALIAS.findall(str(body.get("query"))):
        _, _, path = str(variables.get(variable, "")).partition(":")
        data = repo.files.get(path)
        if data is None:
            answer[alias] = None
            continue
        raw = data.encode() if isinstance(data, str) else data
        binary = b"\0" in raw
        try:
            text = None if binary else raw.decode("utf-8")
        except UnicodeDecodeError:
            binary, text = True, None
        answer[alias] = {"text": text, "isBinary": binary}
    return _json(200, {"data": {"repository": answer}})


def _json(status: int, body: object, headers: dict | None = None) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, json.dumps(body).encode()


def _metadata(full_name: str, repo: FakeRepo) -> dict:
    owner = full_name.split("/")[0]
    license_ = {"key": repo.license.lower(), "spdx_id": repo.license, "name": repo.license} if repo.license else None
    return {
        "id": abs(hash(full_name)) % 10**8, "full_name": full_name, "name": full_name.split("/")[1],
        "owner": {"login": owner, "type": "User"}, "private": False, "html_url": f"https://github.com/{full_name}",
        "description": repo.description, "language": repo.language, "stargazers_count": repo.stars,
        "topics": list(repo.topics), "default_branch": "main", "pushed_at": "2026-01-02T03:04:05Z",
        "license": license_, "size": 0 if repo.empty else 120, "fork": False, "archived": False,
    }


def _content(path: str, data: str | bytes) -> dict:
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > 1_000_000:  # GitHub's contents API sends no content for files over 1 MB
        return {"type": "file", "name": path.rsplit("/", 1)[-1], "path": path, "size": len(raw), "encoding": "none", "content": ""}
    encoded = base64.b64encode(raw).decode()
    lines = "\n".join(encoded[i:i + 60] for i in range(0, len(encoded), 60))  # GitHub wraps base64 at 60
    return {"type": "file", "name": path.rsplit("/", 1)[-1], "path": path, "size": len(raw), "encoding": "base64",
            "content": lines + "\n", "sha": "b" * 40}


def _tree(repo: FakeRepo, recursive: bool) -> dict:
    paths = set(repo.files) | ({repo.readme_name} if repo.readme is not None else set()) | set(repo.symlinks)
    folders = {"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)}
    entries = [{"path": f, "mode": "040000", "type": "tree", "sha": "c" * 40} for f in folders]
    for path in paths:
        entries.append({"path": path, "mode": "120000" if path in repo.symlinks else "100644", "type": "blob",
                        "sha": "d" * 40, "size": 10})
    if not recursive:
        entries = [e for e in entries if "/" not in e["path"]]
    return {"sha": repo.sha, "url": "", "tree": sorted(entries, key=lambda e: e["path"]), "truncated": repo.truncated}


def _handler(fake: FakeGitHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: pytest shows failures, not access logs
            pass

        def do_GET(self) -> None:
            self._answer(lambda split: fake.answer(split.path, parse_qs(split.query), self.headers))

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            self._answer(lambda split: _graphql(fake, body, self.headers) if split.path == "/graphql" else _json(404, {}))

        def _answer(self, respond) -> None:
            split = urlsplit(self.path)
            with fake._lock:
                fake.requests.append((self.path, dict(self.headers)))
                fake.remaining -= 1
            if fake.latency_s:
                time.sleep(fake.latency_s)
            fault = fake.next_fault(split.path)
            status, headers, body = _fault(fault, fake) if fault else respond(split)
            self._send(status, headers, body)

        def _send(self, status: int, headers: dict, body: bytes) -> None:
            try:
                self.send_response(status)
                limits = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": str(max(fake.remaining, 1)),
                          "X-RateLimit-Reset": str(int(time.time()) + 3600)}
                for key, value in {**limits, **headers, "Content-Length": str(len(body))}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up on a stalled answer
                pass

    return Handler


def _fault(fault: str, fake: FakeGitHub) -> tuple[int, dict, bytes]:
    if fault == "stall":
        time.sleep(fake.stall_s)
        return _json(200, {"message": "too late"})
    if fault == "429":
        return _json(429, {"message": "Too Many Requests"}, {"Retry-After": "2"})
    if fault == "403-secondary":
        return _json(403, {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."},
                     {"Retry-After": "3"})
    if fault == "403-primary":
        return _json(403, {"message": "API rate limit exceeded"},
                     {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 5)})
    if fault == "malformed":
        return 200, {"Content-Type": "application/json"}, b'{"full_name": "cut off'
    if fault == "wrong-shape":  # valid JSON of a shape GitHub never sends
        return _json(200, {"tree": [1, 2], "content": 5})
    if fault == "404":
        return _json(404, {"message": "Not Found"})
    return _json(int(fault), {"message": "Server Error"})
