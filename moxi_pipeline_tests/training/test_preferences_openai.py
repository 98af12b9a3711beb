"""MOXI_PREFERENCES=openai: an OpenAI-compatible model's answers become the grounded chosen answers, paid for once."""

import json

import openai

from moxi_pipeline.dataset.instructions_openai import OpenAIInstructionsConfig
from moxi_pipeline.readme.prompts import to_prompt_completion
from moxi_pipeline.records import RepoFacts
from moxi_pipeline.training.preferences import (
    SKIP_NO_CHOSEN,
    build_preference_pairs,
    prompt_key,
)
from moxi_pipeline.training.preferences_openai import grounded_answer, openai_chosen
from moxi_pipeline_tests.fake_openai import COMPLETION_TOKENS, PROMPT_TOKENS, FakeOpenAI
from moxi_pipeline_tests.training.test_preferences_dpo import CONFIG, _samples

API_KEY = "sk-test-preferences-secret"
# a heading of its own (dropped: the prefix forces it), an invented path and URL (grounding removes them)
ANSWER = ("## Usage\n\nInstall it, then import `{repo}` to call its functions. Run `{repo} --help` to list the options.\n\n"
          "See `docs/made_up_guide.md` for more.\n\nDocs at https://made-up.example.com/{repo}.\n")


class SectionServer(FakeOpenAI):
    """Answers a section prompt in plain text, as a chat model would; "" for the repo named in `empty_for`."""

    def __init__(self, empty_for: str = "", **kwargs):
        super().__init__(**kwargs)
        self.empty_for = empty_for

    def reply(self, action, body, auth=""):
        user = body["messages"][-1]["content"]
        repo = next(f"tool{i}" for i in range(10) if f"tool{i}" in user)
        content = "" if repo == self.empty_for else ANSWER.format(repo=repo)
        return 200, {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                               "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}}


def _client(fake):
    return openai.OpenAI(api_key=API_KEY, base_url=fake.base_url, timeout=5, max_retries=0)


def _with_cli(sample):
    """The sample with facts that give the project's own command (a console script `toolN`)."""
    facts = RepoFacts(name=sample.repo, commands=(sample.repo,))
    return sample.model_copy(update={"input": sample.input.model_copy(update={"facts": facts})})


def test_the_models_answers_become_grounded_chosen_answers_and_a_rerun_pays_nothing(tmp_path):
    samples = [_with_cli(sample) for sample in _samples(3)[:3]]
    config = OpenAIInstructionsConfig(model="fake-model", concurrency=2)
    with SectionServer(empty_for="tool2") as fake:
        chosen, missing, result = openai_chosen(_client(fake), samples, config, tmp_path / "store")
        assert len(fake.requests) == 3 and result.requests == 3
        # each request is the SFT sample's own chat prompt, as plain text (no response_format)
        prompts = [to_prompt_completion(s)["prompt"] for s in samples]
        assert sorted(map(json.dumps, (r["messages"] for r in fake.requests))) == sorted(map(json.dumps, prompts))
        assert all("response_format" not in request for request in fake.requests)
        again, missing_again, rerun = openai_chosen(_client(fake), samples, config, tmp_path / "store")
        assert len(fake.requests) == 3 and rerun.requests == 0  # progress + cache: nothing is asked twice
    assert again == chosen and missing_again == missing
    answer = chosen[prompt_key(samples[0])]
    # the forced heading once, the grounded sentences kept (the CLI's too: these facts give it), the invented
    # path and URL gone
    assert answer.startswith("## Usage\n\n") and answer.count("## Usage") == 1
    assert "import `tool0`" in answer and "`tool0 --help`" in answer and "made_up_guide" not in answer and "made-up.example.com" not in answer
    assert missing == {prompt_key(samples[2]): "empty reply"}
    assert API_KEY not in "".join(path.read_text() for path in (tmp_path / "store").iterdir())


def test_a_reply_with_nothing_grounded_gives_no_chosen_answer():
    sample = _samples(1)[0]
    assert grounded_answer(sample, "## Usage\n\nSee `docs/made_up_guide.md`.") == ""


def test_the_teacher_may_not_run_the_project_by_a_name_its_facts_do_not_give():
    # the teacher is a model too: `tool0 --help` stays only where the facts give a command `tool0`
    reply = "## Usage\n\nRun `tool0 --help` to list the options.\n\nImport `tool0` in your code."
    assert grounded_answer(_samples(1)[0], reply) == "## Usage\n\nImport `tool0` in your code."
    assert "`tool0 --help`" in grounded_answer(_with_cli(_samples(1)[0]), reply)


def test_openai_chosen_answers_replace_the_real_section_in_the_pairs(tiny_model_dir, tmp_path):
    from moxi_pipeline.models.base import load_model, load_tokenizer

    samples = _samples(3)
    chosen = {prompt_key(samples[0]): "## Usage\n\nA grounded model answer.",
              prompt_key(samples[1]): "## Usage\n\nAnother grounded model answer."}
    model, tokenizer = load_model(tiny_model_dir, "cpu"), load_tokenizer(tiny_model_dir)
    progress = tmp_path / "progress.jsonl"
    result = build_preference_pairs(model, tokenizer, samples, CONFIG, progress, chosen)
    assert [pair.chosen for pair in result.pairs] == list(chosen.values())
    assert result.skipped == {SKIP_NO_CHOSEN: 1}
    assert result.generated == 2  # the prompt without a chosen answer is not generated for
