"""Instructions from an OpenAI-compatible model: the seed's Phase 3, batched, validated, cached, resumable.

Each section sample (`dataset.build_sft_dataset`) becomes one item: its repository, section, project
type, file tree and the section text it teaches. Items go to the model in batches (`batch_size`, 3 by
default); the model answers one instruction per item id, as JSON (a `json_schema` response format, with a
tolerant parser for servers that wrap or fence it). The instruction replaces the sample's `instruction`.

Rules, each tested against a fake server over HTTP (`moxi_pipeline_tests/fake_openai.py`):
- an instruction is kept only when it is non-empty, within `min/max_instruction_chars`, answers its own
  item id, names no other item's repository instead of its own, and copies no run of `max_copied_words`
  words from the section;
- a batch that comes back malformed or with the wrong ids/count is retried item by item; an item still
  invalid after `item_attempts` single requests is recorded as a failure with its reason, never dropped;
- 429s, 5xx and timeouts are retried with exponential backoff by the openai client itself (its
  `max_retries`, Retry-After honoured); an endpoint that still errors stops the run with
  `InstructionEndpointError`: the caller fails, it never falls back to another generator;
- `concurrency` batches are in flight at most;
- a budget (`max_requests`, `max_tokens`) stops new requests; what was paid for is kept, and the items
  never asked for are recorded as "budget reached" so a later run can finish them;
- the request and the answer format (prompt, `json_schema`, tolerant parser, the checks above) are
  `instruction_requests.py`;
- every response is cached under sha256(model, messages) in `cache.jsonl`, and every finished item is
  appended to `progress.jsonl` as it completes: a killed run resumes where it stopped and pays nothing twice.

The client is any `openai.OpenAI`; this module never sees Dagster and never writes the API key anywhere.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from moxi_pipeline.collect import Skipped
from moxi_pipeline.dataset.instruction_requests import (
    RESPONSE_FORMAT,
    InstructionItem,
    check_instruction,
    item_for,
    parse_instructions,
    render_batch,
    request_key,
)
from moxi_pipeline.records import SftSample
from moxi_pipeline.storage.append_log import AppendLog

CACHE_FILE = "cache.jsonl"
PROGRESS_FILE = "progress.jsonl"
BUDGET_REASON = "budget reached"


class InstructionEndpointError(RuntimeError):
    """The configured endpoint answered with an error (after the client's retries) or not at all."""


@dataclass(frozen=True)
class OpenAIInstructionsConfig:
    model: str = "gpt-4o-mini"
    batch_size: int = 3  # items per request; the seed's choice, small enough that ids rarely get mixed up
    concurrency: int = 4  # requests in flight at most
    max_requests: int | None = None  # new (uncached) requests this run; None: no limit
    max_tokens: int | None = None  # prompt + completion tokens this run; checked before each request
    min_instruction_chars: int = 20
    max_instruction_chars: int = 400
    max_copied_words: int = 8  # an instruction sharing this many consecutive words with the section copies it
    item_attempts: int = 2  # single-item requests for an item its batch did not answer validly
    structured_output: bool = True  # send the json_schema response_format; off for servers that refuse it
    max_section_chars: int = 1500  # of the section text shown to the model
    temperature: float = 0.3

    def __post_init__(self):
        for name in ("batch_size", "concurrency", "min_instruction_chars", "max_copied_words", "item_attempts",
                     "max_section_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_requests", "max_tokens"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {getattr(self, name)}")
        if self.max_instruction_chars <= self.min_instruction_chars:
            raise ValueError(f"max_instruction_chars must be > min_instruction_chars={self.min_instruction_chars}, "
                             f"got {self.max_instruction_chars}")
        if not self.model.strip():
            raise ValueError("model must not be empty")


@dataclass
class InstructionsResult:
    instructions: dict[str, str] = field(default_factory=dict)  # item key -> instruction
    failures: dict[str, str] = field(default_factory=dict)  # item key -> why it has none
    requests: int = 0  # HTTP exchanges paid for this run (the client's own retries not counted)
    cache_hits: int = 0
    resumed: int = 0  # items finished by an earlier run (progress.jsonl)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retried_items: int = 0  # items asked again on their own after an invalid batch answer
    budget_stopped: str | None = None

    def metadata(self) -> dict:
        return {"requests": self.requests, "cache_hits": self.cache_hits, "resumed": self.resumed,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "retried_items": self.retried_items, "instructions": len(self.instructions),
                "failures": len(self.failures), "budget_stopped": self.budget_stopped or ""}


class _Store:
    """cache.jsonl (request key -> reply) and progress.jsonl (item key -> instruction or failure)."""

    def __init__(self, folder: Path, model: str):
        self.cache_log, self.progress_log = AppendLog(Path(folder) / CACHE_FILE), AppendLog(Path(folder) / PROGRESS_FILE)
        self.cache = {row["key"]: row for row in self.cache_log.read()}
        self.done = {row["item"]: row["instruction"] for row in self.progress_log.read()
                     if "instruction" in row and row.get("model") == model}  # another model's answers are not ours


class _BudgetReached(Exception):
    pass


class _Run:
    def __init__(self, client, config: OpenAIInstructionsConfig, store: _Store):
        self.client, self.config, self.store = client, config, store
        self.result = InstructionsResult()
        self.lock = threading.Lock()
        self.stop: BaseException | None = None  # the first endpoint error; no new request after it

    def ask(self, items: list[InstructionItem], rejected: str = "") -> str | None:
        """The reply text for these items: from the cache, else one request (budget permitting)."""
        return self.ask_messages(render_batch(items, self.config, rejected), structured=True)

    def ask_messages(self, messages: list[dict], structured: bool) -> str | None:
        """The reply text for these messages: from the cache, else one request (budget permitting)."""
        key = request_key(self.config.model, messages)
        cached = self.store.cache.get(key)
        if cached is not None:
            with self.lock:
                self.result.cache_hits += 1
            return cached["content"]
        self._take_budget()
        reply = self._create(messages, structured)
        usage = getattr(reply, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", 0) or 0
        completion_tokens = getattr(usage, "completion_tokens", 0) or 0
        with self.lock:
            self.result.prompt_tokens += prompt_tokens
            self.result.completion_tokens += completion_tokens
        content = reply.choices[0].message.content if reply.choices else None
        row = {"key": key, "model": self.config.model, "content": content,
               "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        self.store.cache[key] = row
        self.store.cache_log.append(row)
        return content

    def _take_budget(self) -> None:
        with self.lock:
            if self.stop is not None:
                raise self.stop
            result, config = self.result, self.config
            if config.max_requests is not None and result.requests >= config.max_requests:
                raise _BudgetReached(f"{BUDGET_REASON}: max_requests={config.max_requests}")
            if config.max_tokens is not None and result.prompt_tokens + result.completion_tokens >= config.max_tokens:
                raise _BudgetReached(f"{BUDGET_REASON}: max_tokens={config.max_tokens}")
            result.requests += 1

    def _create(self, messages: list[dict], structured: bool):
        import openai

        extra = {"response_format": RESPONSE_FORMAT} if structured and self.config.structured_output else {}
        try:
            return self.client.chat.completions.create(
                model=self.config.model, messages=messages, temperature=self.config.temperature, **extra)
        except openai.APIError as error:
            status = getattr(error, "status_code", None)
            what = f"HTTP {status}" if status else type(error).__name__
            hint = " (set MOXI_OPENAI_STRUCTURED_OUTPUT=false if it refuses response_format)" if status == 400 else ""
            message = _redact(f"instruction endpoint {self.client.base_url} (model {self.config.model}) failed: "
                              f"{what}: {error} (429s, 5xx and timeouts are retried {self.client.max_retries} times)"
                              f"{hint}", self.client.api_key)
            failure = InstructionEndpointError(message)
            with self.lock:
                self.stop = self.stop or failure
            raise failure from None

    def finish(self, item: InstructionItem, instruction: str | None, reason: str | None) -> None:
        with self.lock:
            if instruction is not None:
                self.result.instructions[item.key] = instruction
            else:
                self.result.failures[item.key] = reason or "unknown"
        if not (reason or "").startswith(BUDGET_REASON):  # a budget stop is no verdict: the next run asks
            outcome = {"instruction": instruction} if instruction is not None else {"failure": reason}
            self.store.progress_log.append({"item": item.key, "model": self.config.model, **outcome})

    def run_batch(self, batch: list[InstructionItem]) -> None:
        try:
            if self.stop is not None:
                return
            pending = self._answer(batch)
            for item, reason in pending:
                self._answer_alone(item, reason)
        except _BudgetReached as stop:
            with self.lock:
                self.result.budget_stopped = str(stop)
            for item in batch:
                if item.key not in self.result.instructions and item.key not in self.result.failures:
                    self.finish(item, None, str(stop))

    def _answer(self, batch: list[InstructionItem]) -> list[tuple[InstructionItem, str]]:
        """Finish the batch's valid answers; return the items to ask again alone, with the reason."""
        try:
            found = parse_instructions(self.ask(batch), [item.id for item in batch])
        except ValueError as error:
            return [(item, str(error)) for item in batch]
        retry = []
        for item in batch:
            reason = check_instruction(found[item.id], item, batch, self.config)
            if reason is None:
                self.finish(item, found[item.id].strip(), None)
            else:
                retry.append((item, reason))
        return retry

    def _answer_alone(self, item: InstructionItem, reason: str) -> None:
        with self.lock:
            self.result.retried_items += 1
        attempts = self.config.item_attempts
        for attempt in range(1, attempts + 1):
            # the attempt number keeps each retry's prompt, and so its cache key, distinct
            rejected = f"{reason} (single-item attempt {attempt} of {attempts})"
            try:
                text = parse_instructions(self.ask([item], rejected=rejected), [item.id])[item.id]
                reason = check_instruction(text, item, [item], self.config)
            except ValueError as error:
                reason = str(error)
            if reason is None:
                self.finish(item, text.strip(), None)
                return
        self.finish(item, None, f"no valid instruction after {self.config.item_attempts} single-item requests: {reason}")


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "**********") if secret else text


def generate_instructions(client, items: list[InstructionItem], config: OpenAIInstructionsConfig, store_dir: Path,
                          log: Callable[[str], None] | None = None) -> InstructionsResult:
    """An instruction or a failure reason for every item. Raises InstructionEndpointError when the
    endpoint fails; everything finished before that is already in `store_dir` for the next run."""
    report = log or (lambda message: None)
    store = _Store(store_dir, config.model)
    run = _Run(client, config, store)
    unique = list({item.key: item for item in items}.values())
    todo = []
    for item in unique:
        if item.key in store.done:
            run.result.instructions[item.key] = store.done[item.key]
            run.result.resumed += 1
        else:
            todo.append(item)
    batches = [todo[i:i + config.batch_size] for i in range(0, len(todo), config.batch_size)]
    report(f"instructions: {len(unique)} items, {run.result.resumed} done by an earlier run, "
           f"{len(batches)} batches of <= {config.batch_size} for {config.model}")
    _run_all(run, config.concurrency, run.run_batch, batches)
    result = run.result
    report(f"instructions: {len(result.instructions)} kept, {len(result.failures)} failed, {result.requests} requests, "
           f"{result.cache_hits} cache hits, {result.prompt_tokens}+{result.completion_tokens} tokens"
           + (f"; stopped: {result.budget_stopped}" if result.budget_stopped else ""))
    return result


def _run_all(run: _Run, concurrency: int, work: Callable, jobs: list) -> None:
    """`work(job)` for every job on `concurrency` threads; then the run's stop (budget, endpoint) or the first
    error a job raised, so nothing fails silently."""
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        errors = [future.exception() for future in [pool.submit(work, job) for job in jobs]]
    if run.stop is not None:
        raise run.stop
    for error in errors:
        if error is not None:
            raise error


def instruct_samples(client, samples: list[SftSample], config: OpenAIInstructionsConfig, store_dir: Path,
                     log: Callable[[str], None] | None = None) -> tuple[list[SftSample], list[Skipped], InstructionsResult]:
    """Samples with the model's instructions; a sample without one is skipped with its item's reason."""
    items = [item_for(sample) for sample in samples]
    result = generate_instructions(client, items, config, store_dir, log)
    kept, skipped = [], []
    for sample, item in zip(samples, items):
        if item.key in result.instructions:
            kept.append(sample.model_copy(update={"instruction": result.instructions[item.key]}))
        else:
            skipped.append(Skipped(f"{sample.repo_url} {sample.section}", result.failures[item.key]))
    return kept, skipped, result


def answer_chats(client, chats: dict[str, list[dict]], config: OpenAIInstructionsConfig, store_dir: Path,
                 log: Callable[[str], None] | None = None) -> InstructionsResult:
    """The model's plain-text reply to each chat (key -> messages), in `result.instructions` (key -> reply); a key
    without one is in `result.failures` with its reason. The same cache, budget, retries and resume as
    `generate_instructions`: one request per chat, no response_format; a re-run pays for no reply twice."""
    report = log or (lambda message: None)
    store = _Store(store_dir, config.model)
    run = _Run(client, config, store)
    todo = {key: messages for key, messages in chats.items() if key not in store.done}
    for key in chats.keys() - todo.keys():
        run.result.instructions[key] = store.done[key]
        run.result.resumed += 1

    def answer(key: str) -> None:
        item = InstructionItem(key=key, repo="", section="", project_type="", file_tree=(), text="")  # finish() reads the key
        if run.stop is not None:
            return
        try:
            reply = (run.ask_messages(todo[key], structured=False) or "").strip()
        except _BudgetReached as stop:
            with run.lock:
                run.result.budget_stopped = str(stop)
            run.finish(item, None, str(stop))
            return
        run.finish(item, reply or None, None if reply else "empty reply")

    report(f"answers: {len(chats)} chats, {run.result.resumed} done by an earlier run, {len(todo)} to ask "
           f"{config.model}")
    _run_all(run, config.concurrency, answer, list(todo))
    result = run.result
    report(f"answers: {len(result.instructions)} kept, {len(result.failures)} failed, {result.requests} requests, "
           f"{result.cache_hits} cache hits" + (f"; stopped: {result.budget_stopped}" if result.budget_stopped else ""))
    return result
