"""A fake OpenAI-compatible server on 127.0.0.1: `/v1/chat/completions` in the real wire format, usage included.

Each request takes the next action from `script` (then `default`):
  "valid"       one instruction per item id of the prompt
  "malformed"   prose, no JSON
  "fenced"      valid JSON inside a ```json fence with prose around it
  "wrong_count" one instruction fewer than the items
  "copy"        each instruction copies the start of its section text
  "429" / "500" an error with `retry-after-ms: 1`, so the client's backoff stays short in tests
  "401"         an authentication error that echoes the Authorization header back, as careless servers do
  "stall"       sleeps `stall_s` before answering (past the client's timeout)
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ITEM = re.compile(r'Item id "(?P<id>[^"]+)"\nRepository: (?P<repo>\S+) \(.*?\)\nSection: (?P<section>\w+)'
                  r".*?Section text:\n(?P<text>.*?)(?=\n\nItem id |\n\nA previous answer|\Z)", re.DOTALL)
PROMPT_TOKENS, COMPLETION_TOKENS = 100, 20  # per request, fixed so tests can check the sums


def items_of(body: dict) -> list[dict]:
    return [match.groupdict() for match in ITEM.finditer(body["messages"][-1]["content"])]


def valid_instruction(item: dict) -> str:
    return f"Write the {item['section']} section of the README for {item['repo']}, in plain words."


class FakeOpenAI:
    def __init__(self, script: list[str] | None = None, default: str = "valid", stall_s: float = 2.0):
        self.script, self.default, self.stall_s = list(script or []), default, stall_s
        self.requests: list[dict] = []  # every request body, in arrival order
        self.auth_headers: list[str] = []
        self.in_flight = self.max_in_flight = 0  # requests being answered at once, and the most seen
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAI":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def next_action(self, body: dict, auth: str) -> str:
        with self.lock:
            self.requests.append(body)
            self.auth_headers.append(auth)
            return self.script.pop(0) if self.script else self.default

    def reply(self, action: str, body: dict, auth: str = "") -> tuple[int, dict]:
        items = items_of(body)
        if action == "401":
            return 401, {"error": {"message": f"invalid key in {auth!r}", "type": "invalid_request_error", "code": None}}
        if action in ("429", "500"):
            return int(action), {"error": {"message": f"fake {action}", "type": "server_error", "code": None}}
        if action == "stall":
            time.sleep(self.stall_s)
        entries = [{"id": item["id"], "instruction": valid_instruction(item)} for item in items]
        if action == "wrong_count":
            entries = entries[:-1]
        if action == "copy":
            entries = [{"id": item["id"], "instruction": " ".join(item["text"].split()[:14])} for item in items]
        content = json.dumps({"instructions": entries})
        if action == "malformed":
            content = "Sure! Here are some instructions for you."
        if action == "fenced":
            content = f"Here you go:\n```json\n{content}\n```"
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                      "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS},
        }

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                auth = self.headers.get("Authorization", "")
                with fake.lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    status, payload = fake.reply(fake.next_action(body, auth), body, auth)
                finally:
                    with fake.lock:
                        fake.in_flight -= 1
                self._send(status, payload)

            def _send(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if status >= 400:
                        self.send_header("retry-after-ms", "1")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on a stalled request

            def log_message(self, *args):
                pass

        return Handler
