"""Context-aware decoding (`DecodingConfig.context_contrast`): the prompt's log-probabilities pushed away from the
same request without the repository's context."""

from __future__ import annotations

import pytest

from moxi_pipeline.readme.decoding import DecodingConfig, generate_ids

# no guards: greedy picks are the contrast's argmax alone
PLAIN = {"no_repeat_ngram_size": 0, "max_prompt_copy": 0, "stop_at_heading": False, "max_new_tokens": 10}


@pytest.fixture(scope="module")
def tiny_fp32(tiny_model_dir):
    from moxi_pipeline.models.base import load_model, load_tokenizer

    return load_model(tiny_model_dir, "cpu").float(), load_tokenizer(tiny_model_dir)


def _ids(tokenizer, texts: list[str]) -> list[list[int]]:
    return [tokenizer(text, add_special_tokens=False).input_ids for text in texts]


PROMPTS = ["Facts: tiny parses CSV files.\n\n# tiny\n\nA small", "Key files: pyproject.toml\n\n## Usage\n\nRun"]
PLAINS = ["# tiny\n\nA small", "Project: tiny (Python library)\n\n## Usage\n\nRun"]


def test_the_contrast_is_off_by_default_and_checked():
    assert DecodingConfig().context_contrast == 0
    with pytest.raises(ValueError, match=r"DecodingConfig\.context_contrast .*-0\.1"):
        DecodingConfig(context_contrast=-0.1)


def test_contrast_needs_one_plain_prompt_per_prompt(tiny_fp32):
    model, tokenizer = tiny_fp32
    prompts = _ids(tokenizer, PROMPTS)
    with pytest.raises(ValueError, match="context_contrast needs one plain prompt per prompt"):
        generate_ids(model, tokenizer, prompts, DecodingConfig(context_contrast=0.5, **PLAIN))
    with pytest.raises(ValueError, match="plain_prompts"):
        generate_ids(model, tokenizer, prompts, DecodingConfig(context_contrast=0.5, **PLAIN), plain_prompts=prompts[:1])


def test_a_plain_prompt_equal_to_the_prompt_changes_nothing(tiny_fp32):
    """(1 + a) log p - a log p = log p: with the prompt as its own plain prompt, greedy output is the same. Both are
    left-padded to different widths in a batch, so this also checks the plain side's positions and cache."""
    model, tokenizer = tiny_fp32
    prompts = _ids(tokenizer, PROMPTS)
    assert len({len(p) for p in prompts}) == 2
    greedy = generate_ids(model, tokenizer, prompts, DecodingConfig(**PLAIN))
    contrasted = generate_ids(model, tokenizer, prompts, DecodingConfig(context_contrast=2.0, **PLAIN), plain_prompts=prompts)
    assert contrasted == greedy


def _log_probs(model, ids: list[int]):
    import torch

    with torch.no_grad():
        return torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, -1].float(), dim=-1)


@pytest.mark.parametrize("alpha", [0.5, 3.0])
def test_each_pick_is_the_argmax_of_the_contrast_computed_without_cache(tiny_fp32, alpha):
    """Every token generated in a left-padded batch is the argmax of (1 + a) log p(. | prompt + answer so far)
    - a log p(. | plain prompt + answer so far), each computed here from scratch, one row at a time, then the
    answer's repetition penalty (the random tiny model repeats one token forever without it)."""
    model, tokenizer = tiny_fp32
    prompts, plains = _ids(tokenizer, PROMPTS), _ids(tokenizer, PLAINS)
    settings = {**PLAIN, "repetition_penalty": 1.3}
    out = generate_ids(model, tokenizer, prompts, DecodingConfig(context_contrast=alpha, **settings), plain_prompts=plains)
    assert out != generate_ids(model, tokenizer, prompts, DecodingConfig(**settings))  # the plain prompt matters
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for prompt, plain, answer in zip(prompts, plains, out):
        assert len(answer) == PLAIN["max_new_tokens"] or answer[-1] == end
        for step, token in enumerate(answer):
            contrast = (1 + alpha) * _log_probs(model, prompt + answer[:step]) - alpha * _log_probs(model, plain + answer[:step])
            seen = sorted(set(answer[:step]))
            contrast[seen] = contrast[seen].where(contrast[seen] > 0, contrast[seen] * 1.3).where(
                contrast[seen] <= 0, contrast[seen] / 1.3)
            top2 = contrast.topk(2).values
            assert int(contrast.argmax()) == token or float(top2[0] - top2[1]) < 1e-5, (step, token)


def test_section_jobs_carry_the_plain_request(tiny_fp32):
    from moxi_pipeline.readme.compose import section_job
    from moxi_pipeline.readme.facts import repo_facts
    from moxi_pipeline.records import KeyFile, RepoRecord

    _, tokenizer = tiny_fp32
    repo = RepoRecord(repo_url="https://github.com/acme/tiny", owner="acme", repo="tiny", readme="# tiny\n", source="local",
                      file_tree=("pyproject.toml", "tiny/cli.py"), project_type="python_cli",
                      key_files=(KeyFile(path="pyproject.toml",
                                         content='[project]\nname = "tiny"\ndescription = "Parse CSV files."\n'),))
    facts = repo_facts(repo)
    job = section_job(tokenizer, repo, 0, facts, "usage", "## Usage\n\n")
    prompt, plain = tokenizer.decode(job.prompt_ids), tokenizer.decode(job.plain_ids)
    assert "pyproject.toml" in prompt and "Parse CSV files." in prompt
    assert "Project: tiny (Python command-line tool)" in plain
    assert "pyproject.toml" not in plain and "Parse CSV files." not in plain and "File tree" not in plain
    assert plain.endswith("## Usage\n\n") and prompt.endswith("## Usage\n\n")
