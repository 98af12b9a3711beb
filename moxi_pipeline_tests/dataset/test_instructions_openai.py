"""The openai instruction backend against a fake OpenAI-compatible server, through the real openai client over HTTP."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest

from moxi_pipeline.dataset.instructions_openai import (
    CACHE_FILE,
    PROGRESS_FILE,
    InstructionEndpointError,
    OpenAIInstructionsConfig,
    check_instruction,
    instruct_samples,
    item_for,
    parse_instructions,
)
from moxi_pipeline.records import SampleInput, SftSample
from moxi_pipeline_tests.fake_openai import (
    COMPLETION_TOKENS,
    PROMPT_TOKENS,
    FakeOpenAI,
    valid_instruction,
)

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-moxi-test-9f8e7d6c5b4a"  # a made-up key; the tests prove it never lands anywhere but the header


def make_samples(n: int) -> list[SftSample]:
    sections = ("about", "features", "usage")
    return [SftSample(
        instruction="template instruction", repo_url=f"https://example.com/o/repo{i // 3}", repo=f"repo{i // 3}",
        input=SampleInput(file_tree=("pyproject.toml", f"repo{i // 3}/cli.py"), project_type="python_cli"),
        content=f"## Section {i}\n\nThis tool number {i} renames files in bulk and keeps a log of every change it made.",
        kind="section", split="train", section=sections[i % 3]) for i in range(n)]


def client_for(fake: FakeOpenAI, timeout_s: float = 5.0, max_retries: int = 2) -> openai.OpenAI:
    return openai.OpenAI(api_key=API_KEY, base_url=fake.base_url, timeout=timeout_s, max_retries=max_retries)


def run(fake, tmp_path, samples, client=None, **config):
    config = OpenAIInstructionsConfig(**{"concurrency": 1, **config})
    return instruct_samples(client or client_for(fake), samples, config, tmp_path / "store")


def expected(sample: SftSample) -> str:
    return valid_instruction({"section": sample.section, "repo": sample.repo})


def test_openai_batches_of_three_one_instruction_per_sample_and_usage(tmp_path):
    samples = make_samples(7)
    with FakeOpenAI() as fake:
        kept, skipped, result = run(fake, tmp_path, samples, concurrency=3)
    assert sorted(len(body["messages"][-1]["content"].split('Item id "')) - 1 for body in fake.requests) == [1, 3, 3]
    assert [s.instruction for s in kept] == [expected(s) for s in samples]
    assert [s.model_copy(update={"instruction": "x"}) for s in kept] == [s.model_copy(update={"instruction": "x"}) for s in samples]
    assert skipped == []
    assert (result.requests, result.cache_hits, result.prompt_tokens, result.completion_tokens) == (
        3, 0, 3 * PROMPT_TOKENS, 3 * COMPLETION_TOKENS)
    body = fake.requests[0]
    assert (body["model"], body["response_format"]["type"]) == ("gpt-4o-mini", "json_schema")
    assert fake.auth_headers[0] == f"Bearer {API_KEY}"


def test_openai_rerun_pays_nothing_progress_or_cache_alone(tmp_path):
    samples = make_samples(6)
    with FakeOpenAI() as fake:
        first = run(fake, tmp_path, samples)[2]
        second_kept, _, second = run(fake, tmp_path, samples)
        assert len(fake.requests) == first.requests == 2  # the re-run sent nothing
        assert (second.resumed, second.requests) == (6, 0)
        (tmp_path / "store" / PROGRESS_FILE).unlink()  # the cache alone still answers every request
        third_kept, _, third = run(fake, tmp_path, samples)
        assert len(fake.requests) == 2
    assert (third.cache_hits, third.requests) == (2, 0)
    assert [s.instruction for s in third_kept] == [s.instruction for s in second_kept] == [expected(s) for s in samples]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_openai_concurrency_caps_requests_in_flight(tmp_path, concurrency):
    # every answer takes 0.2 s, so 6 batches would all overlap without the cap
    with FakeOpenAI(default="stall", stall_s=0.2) as fake:
        kept, _, _ = run(fake, tmp_path, make_samples(18), concurrency=concurrency)
    assert (len(fake.requests), fake.max_in_flight, len(kept)) == (6, concurrency, 18)


def test_openai_half_written_lines_of_a_killed_run_are_ignored(tmp_path):
    samples = make_samples(6)
    with FakeOpenAI() as fake:
        run(fake, tmp_path, samples)
        for name in (CACHE_FILE, PROGRESS_FILE):
            with (tmp_path / "store" / name).open("a") as out:
                out.write('{"item": "abc", "instr')  # a write cut short by the kill
        kept, _, result = run(fake, tmp_path, make_samples(9))  # three new items: one request
        assert (len(fake.requests), len(kept), result.resumed) == (3, 9, 6)
        kept, _, result = run(fake, tmp_path, make_samples(9))  # what followed the cut line was kept too
        assert (len(fake.requests), len(kept), result.resumed) == (3, 9, 9)


def test_openai_another_model_is_asked_again(tmp_path):
    # progress and cache belong to a model: switching models must not reuse the old model's instructions
    samples = make_samples(3)
    with FakeOpenAI() as fake:
        run(fake, tmp_path, samples)
        _, _, result = run(fake, tmp_path, samples, model="llama3.1")
        assert [body["model"] for body in fake.requests] == ["gpt-4o-mini", "llama3.1"]
    assert (result.resumed, result.cache_hits, result.requests) == (0, 0, 1)


KILL_SCRIPT = """
import openai, sys
from pathlib import Path
from moxi_pipeline.dataset.instructions_openai import OpenAIInstructionsConfig, instruct_samples
from moxi_pipeline_tests.dataset.test_instructions_openai import API_KEY, make_samples
client = openai.OpenAI(api_key=API_KEY, base_url=sys.argv[1], timeout=60, max_retries=0)
instruct_samples(client, make_samples(9), OpenAIInstructionsConfig(concurrency=1), Path(sys.argv[2]))
"""


def test_openai_killed_run_resumes_where_it_stopped(tmp_path):
    # A real kill: a child process runs batches one at a time; the third request stalls, and the child is
    # SIGKILLed while waiting. The re-run asks only for the third batch: two were paid for and are kept.
    with FakeOpenAI(script=["valid", "valid", "stall"], stall_s=30) as fake:
        child = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, fake.base_url, str(tmp_path / "store")],
                                 cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        deadline = time.monotonic() + 30
        while len(fake.requests) < 3 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        assert len(fake.requests) == 3, "the child never reached its third request"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert len((tmp_path / "store" / PROGRESS_FILE).read_text().splitlines()) == 6
        kept, skipped, result = run(fake, tmp_path, make_samples(9))
        assert len(fake.requests) == 4
    assert (result.resumed, result.requests, len(kept), skipped) == (6, 1, 9, [])
    assert "repo2" in fake.requests[3]["messages"][-1]["content"]  # the batch the kill interrupted


@pytest.mark.parametrize("action", ["wrong_count", "malformed"])
def test_openai_bad_batch_is_retried_item_by_item(tmp_path, action):
    samples = make_samples(3)
    with FakeOpenAI(script=[action]) as fake:
        kept, skipped, result = run(fake, tmp_path, samples)
    assert len(fake.requests) == 4  # the batch, then each of its three items alone
    assert [len(body["messages"][-1]["content"].split('Item id "')) - 1 for body in fake.requests] == [3, 1, 1, 1]
    assert "A previous answer was rejected: " in fake.requests[1]["messages"][-1]["content"]
    assert [s.instruction for s in kept] == [expected(s) for s in samples]
    assert (result.retried_items, skipped) == (3, [])


def test_openai_fenced_json_is_parsed_without_a_retry(tmp_path):
    with FakeOpenAI(script=["fenced"]) as fake:
        kept, _, result = run(fake, tmp_path, make_samples(3))
    assert (len(fake.requests), result.retried_items, len(kept)) == (1, 0, 3)


def test_openai_no_sample_is_silently_lost(tmp_path):
    # The model copies the section every time: every sample is skipped, each with its reason.
    samples = make_samples(4)
    with FakeOpenAI(default="copy") as fake:
        kept, skipped, result = run(fake, tmp_path, samples, item_attempts=2)
    assert len(fake.requests) == 2 + 4 * 2  # two batches, then two single requests per item
    assert kept == []
    assert [item.item for item in skipped] == [f"{s.repo_url} {s.section}" for s in samples]
    assert {item.reason for item in skipped} == {
        "no valid instruction after 2 single-item requests: copies 8 or more consecutive words of the section"}
    progress = [json.loads(line) for line in (tmp_path / "store" / PROGRESS_FILE).read_text().splitlines()]
    assert sorted(row["item"] for row in progress) == sorted(item_for(s).key for s in samples)


def test_openai_429_and_500_are_retried_by_the_client(tmp_path):
    with FakeOpenAI(script=["429", "500"]) as fake:
        kept, _, result = run(fake, tmp_path, make_samples(3), client=client_for(fake, max_retries=2))
    assert (len(fake.requests), result.requests, len(kept)) == (3, 1, 3)


def test_openai_stall_past_timeout_is_retried(tmp_path):
    with FakeOpenAI(script=["stall"], stall_s=1.0) as fake:
        kept, _, _ = run(fake, tmp_path, make_samples(3), client=client_for(fake, timeout_s=0.3, max_retries=1))
    assert (len(fake.requests), len(kept)) == (2, 3)


@pytest.mark.parametrize(("action", "fragment"), [
    ("500", "failed: HTTP 500"),
    ("stall", "failed: APITimeoutError"),
    ("401", "failed: HTTP 401"),
])
def test_openai_failing_endpoint_fails_clearly_and_keeps_earlier_work(tmp_path, action, fragment):
    samples = make_samples(6)
    with FakeOpenAI(script=["valid"], default=action, stall_s=0.6) as fake:
        with pytest.raises(InstructionEndpointError, match=fragment) as caught:
            run(fake, tmp_path, samples, client=client_for(fake, timeout_s=0.2, max_retries=1))
    assert fake.base_url in str(caught.value)
    assert API_KEY not in str(caught.value)  # the 401 echoes the Authorization header; the message is redacted
    assert len((tmp_path / "store" / PROGRESS_FILE).read_text().splitlines()) == 3  # the first batch is kept


@pytest.mark.parametrize(("budget", "requests"), [({"max_requests": 2}, 2), ({"max_tokens": 2 * 120}, 2)])
def test_openai_budget_stops_cleanly_keeping_what_was_paid_for(tmp_path, budget, requests):
    samples = make_samples(9)
    with FakeOpenAI() as fake:
        kept, skipped, result = run(fake, tmp_path, samples, **budget)
        assert len(fake.requests) == requests
        assert len(kept) == 6 and [s.instruction for s in kept] == [expected(s) for s in samples[:6]]
        reason = f"budget reached: {next(iter(budget))}={next(iter(budget.values()))}"
        assert [item.reason for item in skipped] == [reason] * 3 and result.budget_stopped == reason
        kept, skipped, result = run(fake, tmp_path, samples)  # no budget: only the rest is asked for
        assert len(fake.requests) == requests + 1
    assert (len(kept), skipped, result.resumed) == (9, [], 6)


def test_openai_api_key_never_reaches_logs_metadata_or_files(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    with FakeOpenAI(script=["429", "wrong_count"], default="valid") as fake:
        kept, skipped, result = instruct_samples(client_for(fake), make_samples(4), OpenAIInstructionsConfig(),
                                                 tmp_path / "store", log=messages.append)
    assert set(fake.auth_headers) == {f"Bearer {API_KEY}"}  # it was sent, as a header
    stored = "".join(path.read_text() for path in (tmp_path / "store").iterdir())
    assert {CACHE_FILE, PROGRESS_FILE} == {path.name for path in (tmp_path / "store").iterdir()}
    for text in (caplog.text, "\n".join(messages), json.dumps(result.metadata()), stored,
                 json.dumps([s.to_dict() for s in kept])):
        assert API_KEY not in text and API_KEY[3:15] not in text


def test_openai_config_names_the_bad_field():
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        OpenAIInstructionsConfig(batch_size=0)
    with pytest.raises(ValueError, match="max_requests must be >= 1 or None, got 0"):
        OpenAIInstructionsConfig(max_requests=0)


@pytest.mark.parametrize(("text", "ids", "found"), [
    ('{"instructions": [{"id": "a", "instruction": "x"}, {"id": "b", "instruction": "y"}]}', ["a", "b"], {"a": "x", "b": "y"}),
    ('[{"id": "b", "instruction": "y"}, {"id": "a", "instruction": "x"}]', ["a", "b"], {"a": "x", "b": "y"}),
    ('Here:\n```json\n{"instructions": ["x", "y"]}\n```', ["a", "b"], {"a": "x", "b": "y"}),
])
def test_openai_parser_is_tolerant(text, ids, found):
    assert parse_instructions(text, ids) == found


@pytest.mark.parametrize(("text", "ids", "reason"), [
    ("", ["a"], "malformed response: empty"),
    ("no json here", ["a"], "malformed response: no JSON"),
    ('{"instructions": ["x"]}', ["a", "b"], "wrong count: 1 instructions for 2 items"),
    ('{"instructions": [{"id": "a", "instruction": "x"}, {"id": "c", "instruction": "y"}]}', ["a", "b"], "wrong ids"),
    ('{"answers": []}', ["a"], "malformed response: no `instructions` list"),
])
def test_openai_parser_names_what_is_wrong(text, ids, reason):
    with pytest.raises(ValueError, match=reason):
        parse_instructions(text, ids)


@pytest.mark.parametrize(("instruction", "reason"), [
    ("Write the usage section of the README for repo0.", None),
    ("   ", "empty instruction"),
    ("Write it.", "instruction has 9 chars, fewer than min_instruction_chars=20"),
    ("Write " + "very " * 100 + "long.", "instruction has 511 chars, more than max_instruction_chars=400"),
    ("Say: this tool number 0 renames files in bulk and keeps a log", "copies 8 or more consecutive words"),
    ("Write the usage section of the README for repo1.", "names 'repo1', another item's repository, not its own 'repo0'"),
    ("Write the usage section for repo0, unlike repo1.", None),  # naming its own repository too is fine
])
def test_openai_instruction_validation(instruction, reason):
    samples = make_samples(4)  # samples 0 and 3 are repo0 and repo1
    item, other = item_for(samples[0]), item_for(samples[3])
    found = check_instruction(instruction, item, [item, other], OpenAIInstructionsConfig())
    assert found == reason if reason is None else found.startswith(reason)


# --- the sft_dataset asset with instructions=openai, through dagster-openai's resource -----------------


def _write_corpus(path: Path, n_repos: int = 4) -> Path:
    rows = [{
        "repo_url": f"https://github.com/octo/tool{i}", "repo": f"octo/tool{i}", "language": "Python",
        "readme": (f"# tool{i}\n\nA command line tool number {i} that renames files in bulk, safely.\n\n"
                   f"## Usage\n\nRun `tool{i} --help` to list the options; the entry point is `tool{i}/cli.py`.\n"),
        "file_tree": ["pyproject.toml", f"tool{i}/__init__.py", f"tool{i}/cli.py"],
        "key_files": [{"path": "pyproject.toml", "content": f'[project]\nname = "tool{i}"\n'}],
    } for i in range(n_repos)]
    path.write_text("\n".join(json.dumps(row) for row in rows))
    return path


def _materialize(tmp_path, openai_resource, instructions: str = "openai"):
    import dagster as dg

    from moxi_pipeline.defs import collect as collect_defs
    from moxi_pipeline.defs import dataset as dataset_defs
    from moxi_pipeline.defs.io_managers import LocalRecordIOManager
    from moxi_pipeline.defs.resources import ArtifactsResource

    data_dir = str(tmp_path / "data")
    corpus = _write_corpus(tmp_path / "corpus.jsonl")
    return dg.materialize(
        [collect_defs.raw_readmes, dataset_defs.readme_chunks, dataset_defs.sft_dataset],
        resources={"io_manager": LocalRecordIOManager(data_dir=data_dir), "artifacts": ArtifactsResource(data_dir=data_dir),
                   "openai": openai_resource},
        run_config={"ops": {"raw_readmes": {"config": {"source": "jsonl", "path": str(corpus)}},
                            "sft_dataset": {"config": {"instructions": instructions, "test_fraction": 0.25}}}},
        raise_on_error=False,
    )


def _resource(monkeypatch, fake):
    from moxi_pipeline.defs.resources import openai_client
    from moxi_pipeline.settings import load_settings

    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)  # the resource reads it as a Dagster EnvVar, as in production
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)  # the key goes only to the environment's base URL
    return openai_client(load_settings({"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": fake.base_url,
                                        "MOXI_OPENAI_MAX_RETRIES": "1", "MOXI_OPENAI_TIMEOUT_S": "2"}))


def _everything_written(result, tmp_path) -> str:
    from dagster._serdes import serialize_value

    events = "\n".join(serialize_value(event) for event in result.all_events)
    files = "\n".join(path.read_bytes().decode("utf-8", "replace") for path in (tmp_path / "data").rglob("*")
                      if path.is_file() and path.suffix != ".arrow")
    arrow = b"".join(path.read_bytes() for path in (tmp_path / "data").rglob("*.arrow"))
    return events + files + arrow.decode("utf-8", "replace")


def test_openai_sft_dataset_asset_records_usage_and_resumes_for_free(tmp_path, monkeypatch, caplog):
    for logger in ("openai", "httpx", "httpx2", "httpcore", "dagster"):  # not root: markdown-it's debug log is huge
        caplog.set_level(logging.DEBUG, logger=logger)
    with FakeOpenAI() as fake:
        result = _materialize(tmp_path, _resource(monkeypatch, fake))
        assert result.success
        first_requests = len(fake.requests)
        again = _materialize(tmp_path, _resource(monkeypatch, fake))
        assert again.success and len(fake.requests) == first_requests  # the re-run paid for nothing
    metadata = {k: v.value for k, v in result.asset_materializations_for_node("sft_dataset")[0].metadata.items()}
    samples = json.loads((tmp_path / "data" / "sft" / "training_dataset.json").read_text())
    samples += json.loads((tmp_path / "data" / "sft" / "test_dataset.json").read_text())
    assert len(samples) == 4 and first_requests == 2  # one About sample per repository (short READMEs are one chunk), 3 + 1
    assert {s["instruction"] for s in samples} == {valid_instruction({"section": s["section"], "repo": s["repo"]})
                                                    for s in samples}
    assert metadata["generator"] == "openai:gpt-4o-mini"
    assert (metadata["instructions_requests"], metadata["instructions_failures"], metadata["skipped"]) == (2, 0, 0)
    assert metadata["instructions_prompt_tokens"] == metadata["openai.gpt-4o-mini.prompt_tokens"] == 2 * PROMPT_TOKENS
    assert metadata["openai.gpt-4o-mini.calls"] == 2  # dagster-openai's own count, from the wrapped client
    again_metadata = again.asset_materializations_for_node("sft_dataset")[0].metadata
    assert (again_metadata["instructions_resumed"].value, again_metadata["instructions_requests"].value) == (4, 0)
    assert set(fake.auth_headers) == {f"Bearer {API_KEY}"}
    written = _everything_written(result, tmp_path) + caplog.text
    assert API_KEY not in written and "gpt-4o-mini" in written


def test_openai_failing_endpoint_fails_the_asset_with_a_clear_message(tmp_path, monkeypatch):
    with FakeOpenAI(default="500") as fake:
        result = _materialize(tmp_path, _resource(monkeypatch, fake))
    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith(f"sft_dataset: instruction endpoint {fake.base_url}/ (model gpt-4o-mini) failed: HTTP 500")
    assert "a re-run resumes from there" in description
    assert not (tmp_path / "data" / "sft" / "training_dataset.json").exists()  # no silent fallback to the template
    assert API_KEY not in _everything_written(result, tmp_path)


def test_openai_backend_without_a_key_fails_naming_the_variable(tmp_path):
    from moxi_pipeline.defs.resources import OpenAIClient

    result = _materialize(tmp_path, OpenAIClient(api_key=""))
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert "MOXI_INSTRUCTIONS=openai, MOXI_PREFERENCES=openai) need OPENAI_API_KEY" in failure.step_failure_data.user_failure_data.description
