"""A small client for GitHub's REST API: retries, rate limits, conditional requests and a call count.

    client = GitHubClient("https://api.github.com", token=settings.github_token)
    reply = client.get("/repos/o/r", kind="repo")          # -> Reply(status, data, etag)

What it does for every call:
- Auth: `Authorization: Bearer <token>` when a token is given, and only to the API's own host (a raw
  awesome-list URL elsewhere gets no token), and only over HTTPS unless that host is loopback
  (`settings.may_send_secret`). Without one, calls run at GitHub's low unauthenticated rate.
  The token is never part of a URL, an error message or a log line.
- Rate limits (GitHub's documented rules):
  - `Retry-After` on a 429 or 403: wait that many seconds, then retry;
  - `X-RateLimit-Remaining: 0` on a 403/429: wait until `X-RateLimit-Reset` (epoch seconds), then retry;
  - a 403 "secondary rate limit" without either header: wait at least `SECONDARY_WAIT_S`;
  - `X-RateLimit-Remaining: 0` on a success: every thread holds its next call until the reset.
  A wait longer than `max_wait_s` is not waited out: the call fails with `GitHubError`.
- Retries: 5xx answers, timeouts, dropped or cut-off connections and a 200 whose JSON is malformed (a cut-off
  body) are retried up to `max_retries` times, waiting `backoff_s * 2**attempt` plus up to 100% jitter
  (0.5 s, 1 s, 2 s, 4 s, 8 s with the defaults: ~15 s before a call gives up).
- Conditional requests: pass the ETag of an earlier reply and a 304 comes back as `Reply(304, None)`;
  GitHub does not count a 304 against the rate limit.
- Counting: every HTTP request sent, retries included, is counted by `kind`, thread-safely.
- GraphQL (`graphql`): one POST that can replace several REST calls; GitHub answers it only with a token.

Answers a caller must handle (404, 409, 451 ...) come back as a Reply; only what could not be got
after the retries raises `GitHubError`, whose message names the path and the cause.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from moxi_pipeline.collect.local_repos import MAX_README_BYTES
from moxi_pipeline.settings import may_send_secret

RETRY_STATUSES = {500, 502, 503, 504}
SECONDARY_WAIT_S = 60.0  # GitHub: "wait at least one minute" when a secondary limit gives no header
USER_AGENT = "moxi-pipeline"
JSON_ACCEPT = "application/vnd.github+json"
SHA_ACCEPT = "application/vnd.github.sha"  # GET commits/{ref} answers with the bare sha, a few bytes


class GitHubError(Exception):
    """A call that failed after its retries; the message says which path and why (never the token)."""


@dataclass(frozen=True)
class Reply:
    status: int
    data: object  # parsed JSON, the text for a non-JSON accept, or None (304, errors without a body)
    etag: str | None = None


class GitHubClient:
    def __init__(
        self, api_url: str = "https://api.github.com", token: str | None = None, *, timeout_s: float = 30.0,
        max_retries: int = 5, backoff_s: float = 0.5, max_wait_s: float = 900.0,
        sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
    ):
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.timeout_s, self.max_retries, self.backoff_s, self.max_wait_s = timeout_s, max_retries, backoff_s, max_wait_s
        self._sleep, self._clock = sleep, clock
        self._lock = threading.Lock()
        self._local = threading.local()  # one requests.Session per thread: a Session is not thread-safe
        self._held_until = 0.0  # epoch seconds: no call leaves before this (the primary limit is spent)
        self.calls: Counter[str] = Counter()
        self.retries = 0
        self.waited_s = 0.0

    def __repr__(self) -> str:  # never the token
        return f"GitHubClient({self.api_url!r}, token={'set' if self._token else 'unset'})"

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _headers(self, url: str, accept: str, etag: str | None) -> dict:
        headers = {"Accept": accept, "User-Agent": USER_AGENT, "X-GitHub-Api-Version": "2022-11-28"}
        if self._token and may_send_secret(url, self.api_url):
            headers["Authorization"] = f"Bearer {self._token}"
        if etag:
            headers["If-None-Match"] = etag
        return headers

    @property
    def has_token(self) -> bool:
        return bool(self._token)

    @property
    def graphql_url(self) -> str:
        """https://api.github.com/graphql; GitHub Enterprise: https://host/api/v3 -> https://host/api/graphql."""
        if self.api_url.endswith("/api/v3"):
            return self.api_url[: -len("/v3")] + "/graphql"
        return self.api_url + "/graphql"

    def graphql(self, query: str, variables: dict, *, kind: str = "graphql") -> dict:
        """The `data` of a GraphQL answer (GitHub's GraphQL API needs a token); GitHubError when there is none."""
        reply = self.request("POST", self.graphql_url, kind=kind, body={"query": query, "variables": variables})
        data = reply.data if isinstance(reply.data, dict) else {}
        if reply.status != 200 or data.get("data") is None:
            errors = "; ".join(str(e.get("message")) for e in data.get("errors") or [] if isinstance(e, dict))
            raise GitHubError(f"POST {urlsplit(self.graphql_url).path}: status {reply.status}: {errors or 'no data'}")
        return data["data"]

    def get(self, path: str, *, kind: str = "other", etag: str | None = None, accept: str = JSON_ACCEPT,
            params: dict | None = None) -> Reply:
        """GET `path` (relative to the API, or a full URL); JSON parsed unless `accept` asks for raw text."""
        return self.request("GET", path, kind=kind, etag=etag, accept=accept, params=params)

    def request(self, method: str, path: str, *, kind: str = "other", etag: str | None = None,
                accept: str = JSON_ACCEPT, params: dict | None = None, body: dict | None = None) -> Reply:
        """One call with the module docstring's retries and waits; `body` is sent as JSON."""
        url = path if path.startswith(("http://", "https://")) else self.api_url + path
        shown = f"{method} {urlsplit(url).path}"  # what error messages name: never the query or a header
        for attempt in range(self.max_retries + 1):
            self._wait_for_reset()
            with self._lock:
                self.calls[kind] += 1
            try:
                response = self._session().request(method, url, headers=self._headers(url, accept, etag), params=params,
                                                   json=body, timeout=self.timeout_s)
            except requests.RequestException as error:  # timeouts, dropped connections, bodies cut mid-way
                cause = f"timed out after {self.timeout_s:g}s" if isinstance(error, requests.Timeout) else type(error).__name__
                self._backoff(attempt, shown, cause)
                continue
            wait_s = self._rate_limit_wait(response)
            if wait_s is not None:
                self._wait(wait_s, attempt, shown, f"rate limited ({response.status_code})")
                continue
            if response.status_code in RETRY_STATUSES:
                self._backoff(attempt, shown, f"server error {response.status_code}")
                continue
            self._note_remaining(response)
            reply = self._reply(response, accept)
            if reply is None:
                self._backoff(attempt, shown, f"malformed JSON in a {response.status_code} answer")
                continue
            return reply
        raise AssertionError("unreachable: _backoff raises on the last attempt")

    def _reply(self, response: requests.Response, accept: str) -> Reply | None:
        etag = response.headers.get("ETag")
        if response.status_code == 304:
            return Reply(304, None, etag)
        if accept != JSON_ACCEPT or not response.content:
            return Reply(response.status_code, response.text if response.ok else None, etag)
        try:
            return Reply(response.status_code, response.json(), etag)
        except (json.JSONDecodeError, ValueError):
            return None if response.ok else Reply(response.status_code, None, etag)

    def _rate_limit_wait(self, response: requests.Response) -> float | None:
        """Seconds to wait before retrying a rate-limited answer, or None when it is no such answer."""
        if response.status_code not in (403, 429):
            return None
        retry_after = response.headers.get("Retry-After")
        if retry_after is not None and retry_after.strip().isdigit():
            return float(retry_after)
        if response.headers.get("X-RateLimit-Remaining") == "0":
            reset = float(response.headers.get("X-RateLimit-Reset") or 0)
            return max(reset - self._clock(), 0.0) + 1.0
        if response.status_code == 429 or "secondary rate limit" in response.text.lower():
            return SECONDARY_WAIT_S
        return None  # a plain 403: forbidden, for the caller to report

    def _note_remaining(self, response: requests.Response) -> None:
        if response.headers.get("X-RateLimit-Remaining") == "0" and response.headers.get("X-RateLimit-Reset"):
            with self._lock:
                self._held_until = max(self._held_until, float(response.headers["X-RateLimit-Reset"]) + 1.0)

    def _wait_for_reset(self) -> None:
        with self._lock:
            wait_s = self._held_until - self._clock()
        if wait_s > 0:
            if wait_s > self.max_wait_s:
                raise GitHubError(f"rate limit spent; it resets in {wait_s:.0f}s, over max_wait_s={self.max_wait_s:g}")
            self._sleep_counted(wait_s)

    def _wait(self, wait_s: float, attempt: int, path: str, cause: str) -> None:
        if attempt >= self.max_retries or wait_s > self.max_wait_s:
            raise GitHubError(f"{path}: {cause}; gave up after {attempt + 1} attempts (next wait {wait_s:.0f}s)")
        with self._lock:
            self.retries += 1
        self._sleep_counted(wait_s)

    def _backoff(self, attempt: int, path: str, cause: str) -> None:
        # 0.5 * 2**attempt, plus up to as much again at random so that many threads don't retry in step
        delay = self.backoff_s * 2**attempt
        self._wait(delay + random.uniform(0, delay), attempt, path, cause)

    def _sleep_counted(self, seconds: float) -> None:
        with self._lock:
            self.waited_s += seconds
        self._sleep(seconds)


class RepoFailed(Exception):
    """One repository gives no record; the message is the reason recorded."""


def decode_readme(data: dict) -> tuple[str, str]:
    """(name, text) of a `/readme` answer; `RepoFailed` when it is huge, binary, not UTF-8 or blank."""
    name = str(data.get("path") or data.get("name") or "README")
    size = int(data.get("size") or 0)
    if size > MAX_README_BYTES or data.get("encoding") == "none":  # GitHub sends no content over 1 MB
        raise RepoFailed(f"{name} is over {MAX_README_BYTES} bytes ({size})")
    try:
        raw = base64.b64decode(str(data.get("content") or ""), validate=False)
    except (binascii.Error, ValueError) as error:
        raise RepoFailed(f"{name}: content is not base64 ({error})") from None
    if b"\0" in raw:
        raise RepoFailed(f"{name} is binary (a NUL byte)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RepoFailed(f"{name} is not UTF-8 text (byte {error.start})") from None
    if not text.strip():
        raise RepoFailed(f"{name} is empty")
    return name, text
