from __future__ import annotations

import json
import math

import pytest

from moxi_pipeline.evaluate import (
    REFERENCE_CHARS,
    EvalConfig,
    completion_ids,
    compute_eval_loss,
    evaluate_models,
    file_mentions,
    grounding,
    rouge_scores,
    section_coverage,
)
from moxi_pipeline.generate import DecodingConfig, generate_readmes
from moxi_pipeline.records import KeyFile, RepoRecord, SampleInput, SftSample
from moxi_pipeline.report import write_eval_report

TREE = ("README.md", "pyproject.toml", "src/tiny/__init__.py", "src/tiny/cli.py", "docs/guide.md", "Makefile")


def test_rouge_of_identical_and_disjoint_texts():
    assert rouge_scores("install the tiny parser", "install the tiny parser") == {"rougeL": 1.0, "rouge1": 1.0}
    assert rouge_scores("alpha beta", "gamma delta") == {"rougeL": 0.0, "rouge1": 0.0}


def test_rouge_stems_words():
    assert rouge_scores("installing parsers", "installed parser")["rouge1"] == 1.0


def test_reference_is_truncated_to_its_first_4000_characters():
    assert REFERENCE_CHARS == 4000
    # "alpha beta " is 11 characters; the remaining 3,989 hold 1,995 "z" tokens, so
    # P = 2/2, R = 2/1997 and F1 = 2PR/(P+R) = 4/1999 (the untruncated 3,002 tokens would give 4/3004)
    scores = rouge_scores("alpha beta", "alpha beta " + "z " * 3000)
    assert scores["rouge1"] == pytest.approx(4 / 1999)
    # words past the cut do not count at all
    assert rouge_scores("alpha beta", "z " * 2000 + "alpha beta") == {"rougeL": 0.0, "rouge1": 0.0}


@pytest.mark.parametrize(
    "heading, section",
    [
        ("## Installation", "installation"),
        ("## Getting Started", "installation"),
        ("## 📦 Install", "installation"),
        ("### Quick start", "installation"),
        ("Setup\n-----", "installation"),
        ("## Usage", "usage"),
        ("## Examples", "usage"),
        ("<h2>How to use</h2>", "usage"),
        ("## License", "license"),
        ("## Licence", "license"),
        ("## Contributing", "contributing"),
        ("## 🤝 Contributors", "contributing"),
        ("# moxi", "title"),
        ("moxi\n====", "title"),
        ("## About", "title"),
        ("## Overview", "title"),
    ],
)
def test_section_coverage_finds_each_heading(heading, section):
    coverage = section_coverage(f"Some text.\n\n{heading}\n\nMore text.\n")
    assert [name for name, found in coverage.items() if found] == [section]


@pytest.mark.parametrize(
    "text",
    [
        "Install it with pip. Usage is simple. MIT license.",  # words in prose are not sections
        "```\n# Installation\n## Usage\n```\n",  # comments inside code are not headings
        "- item\n----\n",  # a list item over a rule is not a setext heading
    ],
)
def test_section_coverage_ignores_what_is_not_a_heading(text):
    assert not any(section_coverage(text).values())


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Edit `pyproject.toml`, then run `src/tiny/cli.py`.", 1.0),
        ("See cli.py and setup.py.", 1 / 2),  # cli.py exists as src/tiny/cli.py; setup.py is invented
        ("Run make (see the Makefile) and read docs/guide.md and docs/api.md.", 2 / 3),
        ("The code lives in `src/tiny/` and `lib/`.", 1 / 2),  # directories count when written as code
        ("Use ./src/tiny/cli.py or ./bin/tiny.sh, or ~/config.yaml.", 1 / 3),
        ("Config goes in `config/settings` and/or `src`.", 0.0),  # a slashed code span is a path; `src` is not
        ("Built on Node.js; edit `App.js`.", 0.0),  # a product name in prose is no file; code is
        ("Run `tiny --help`.", None),  # no mention at all
        ("Fast.<br/>Small.<br />\n<img src=\"logo.png\"/>", None),  # markup is not a path
        ("Read and/or write input/output, e.g. with Node.js from https://example.com/a/b.py.", None),
    ],
)
def test_grounding_is_the_share_of_mentioned_files_that_exist(text, expected):
    assert grounding(text, TREE) == expected


def test_file_mentions_are_distinct_and_normalised():
    assert file_mentions("`./src/tiny/` then src/tiny/cli.py, src/tiny/cli.py and README.md.") == {
        "src/tiny", "src/tiny/cli.py", "README.md",
    }


@pytest.mark.parametrize(
    "field, value",
    [("max_repos", 0), ("device", "tpu"), ("max_length", 8), ("max_loss_samples", -1), ("decoding", {"max_new_tokens": 5})],
)
def test_eval_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"EvalConfig\.{field} "):
        EvalConfig(**{field: value})


def _record(name: str, readme: str) -> RepoRecord:
    return RepoRecord(
        repo_url=f"https://example.com/{name}", owner="me", repo=name, readme=readme, file_tree=TREE,
        key_files=(KeyFile(path="pyproject.toml", content=f'[project]\nname = "{name}"\n'),),
        project_type="python_cli", source="jsonl",
    )


def _sample(name: str, content: str) -> SftSample:
    return SftSample(
        instruction=f"Write the README.md for `{name}`.", input=SampleInput(file_tree=TREE, project_type="python_cli"),
        content=content, repo_url=f"https://example.com/{name}", repo=name, kind="readme", split="test",
    )


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from moxi_pipeline.modeling import load_model, load_tokenizer

    return load_model(tiny_model_dir, "cpu"), load_tokenizer(tiny_model_dir)


def test_completion_ids_split_at_the_assistant_turn(tiny):
    _, tokenizer = tiny
    ids, prompt_len = completion_ids(tokenizer, _sample("tiny", "# tiny\nA parser."))
    assert tokenizer.decode(ids[:prompt_len]).endswith("<|im_start|>assistant\n")
    assert tokenizer.decode(ids[prompt_len:]) == "# tiny\nA parser.<|im_end|>\n"


def test_eval_loss_is_the_completion_only_loss_transformers_computes(tiny):
    import torch

    model, tokenizer = tiny
    samples = [_sample("tiny", "# tiny\nA parser for files."), _sample("other", "## Usage\nRun it.")]
    # reference: HF's own loss with the prompt labelled -100, token-weighted over both samples
    total, count = 0.0, 0
    for sample in samples:
        ids, prompt_len = completion_ids(tokenizer, sample)
        labels = torch.tensor([[-100] * prompt_len + ids[prompt_len:]])
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([ids]), labels=labels).loss.float().item()
        n = len(ids) - prompt_len
        total, count = total + loss * n, count + n
    assert compute_eval_loss(model, tokenizer, samples, max_length=4096) == pytest.approx(total / count, rel=1e-3)


def test_eval_loss_with_no_completion_token_in_max_length_names_it(tiny):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match=r"max_length=16"):
        compute_eval_loss(model, tokenizer, [_sample("tiny", "# tiny\nA parser.")], max_length=16)


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model_dir, tmp_path_factory):
    """A LoRA adapter with random (not zero) B matrices, so the fine-tuned model really differs from base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    out = tmp_path_factory.mktemp("adapter")
    get_peft_model(base, config).save_pretrained(out)
    return out


def test_evaluate_models_end_to_end_writes_every_file(tiny_model_dir, tiny_adapter, tiny, tmp_path):
    records = [_record("beta", "# beta\n\n## Usage\n\nRun `src/tiny/cli.py`.\n"), _record("alpha", "# alpha\nA parser.\n")]
    samples = [_sample("alpha", "# alpha\nA parser."), _sample("beta", "## Usage\nRun it.")]
    config = EvalConfig(max_repos=2, decoding=DecodingConfig(max_new_tokens=10), device="cpu", max_loss_samples=2)
    calls = []
    report = evaluate_models(tiny_model_dir, tiny_adapter, records, samples, config, lambda *a: calls.append(a))

    # repositories sorted by URL; one progress call per README across both models
    assert calls == [("base alpha", 1, 4), ("base beta", 2, 4), ("fine_tuned alpha", 3, 4), ("fine_tuned beta", 4, 4)]
    assert [(r.model, r.repo) for r in report.rows] == [
        ("base", "alpha"), ("base", "beta"), ("fine_tuned", "alpha"), ("fine_tuned", "beta"),
    ]
    # "base" really is the base model: the adapter is disabled, not merely present
    model, tokenizer = tiny
    items = [(r.repo, SampleInput(file_tree=TREE, project_type="python_cli", key_files=r.key_files))
             for r in sorted(records, key=lambda r: r.repo_url)]
    assert [r.prediction for r in report.rows[:2]] == generate_readmes(model, tokenizer, items, config.decoding)
    assert [r.prediction for r in report.rows[:2]] != [r.prediction for r in report.rows[2:]]
    assert report.models["base"].eval_loss != report.models["fine_tuned"].eval_loss
    assert all(math.isfinite(m.eval_loss) for m in report.models.values())
    # real READMEs: alpha has a title only (1/5), beta title + usage (2/5); beta mentions one existing file
    assert report.reference == {"coverage": pytest.approx(0.3), "grounding": 1.0}

    written = write_eval_report(report, tmp_path / "eval")
    assert sorted(p.rsplit("/", 1)[1] for p in written["paths"].values()) == [
        "eval_report.md", "metrics.json", "metrics.png", "predictions.jsonl",
    ]
    predictions = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert [(p["model"], p["repo"]) for p in predictions] == [(r.model, r.repo) for r in report.rows]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n_repos"] == 2 and metrics["headline"]["rougeL"]["base"] == report.models["base"].rougeL
    assert (tmp_path / "eval" / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (tmp_path / "eval" / "eval_report.md").read_text()
    assert "| metric | base | fine-tuned | delta | real README |" in markdown
    assert "![metrics](metrics.png)" in markdown and "| alpha | fine_tuned |" in markdown
    assert written["headline"]["coverage"]["delta"] == pytest.approx(
        report.models["fine_tuned"].coverage - report.models["base"].coverage
    )


def test_evaluate_models_without_test_records_is_an_error(tiny_model_dir, tiny_adapter):
    with pytest.raises(ValueError, match="test_records is empty"):
        evaluate_models(tiny_model_dir, tiny_adapter, [], [], EvalConfig())
