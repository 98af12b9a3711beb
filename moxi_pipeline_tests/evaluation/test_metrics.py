"""Per-README metrics on hand-made texts: overlap, structure, and each trust metric, with exact values."""

from __future__ import annotations

import math

import pytest

from moxi_pipeline.evaluation.evaluate import aggregate, mean_ci, round_robin
from moxi_pipeline.evaluation.metrics import (
    REFERENCE_CHARS,
    degenerate,
    install_commands_in,
    install_ok,
    lint_findings,
    model_sentences,
    rouge_scores,
    score_readme,
    section_coverage,
    section_kinds,
    supported_prose_share,
    title_ok,
    unclosed_fences,
)
from moxi_pipeline.records import RepoFacts, SampleInput, SftSample
from moxi_pipeline_tests.readme.test_grounding import EVIDENCE, FACTS


def test_rouge_of_identical_and_disjoint_texts():
    same = {"rougeL": 1.0, "rouge1": 1.0, "rouge2": 1.0, "rougeL_full": 1.0, "rouge1_full": 1.0, "rouge2_full": 1.0}
    assert rouge_scores("install the tiny parser", "install the tiny parser") == same
    assert rouge_scores("alpha beta", "gamma delta") == {"rougeL": 0.0, "rouge1": 0.0, "rouge2": 0.0, "rougeL_full": 0.0,
                                                         "rouge1_full": 0.0, "rouge2_full": 0.0}


def test_rouge_stems_words():
    assert rouge_scores("installing parsers", "installed parser")["rouge1"] == 1.0


def test_rouge_is_scored_against_the_first_4000_characters_and_rouge_l_full_against_all():
    assert REFERENCE_CHARS == 4000
    # "alpha beta " is 11 characters; the other 3,989 hold 1,995 "z" tokens, so against the head
    # P = 2/2, R = 2/1997, F1 = 2PR/(P+R) = 4/1999; bigrams: 1 of 1 against 1 of 1996 -> 2/1997.
    # The whole reference has 3,002 tokens: rougeL_full = rouge1_full = 4/3004; bigrams 1 of 3,001 -> 2/3002.
    scores = rouge_scores("alpha beta", "alpha beta " + "z " * 3000)
    assert scores == pytest.approx({"rougeL": 4 / 1999, "rouge1": 4 / 1999, "rouge2": 2 / 1997, "rougeL_full": 4 / 3004,
                                    "rouge1_full": 4 / 3004, "rouge2_full": 2 / 3002})
    # words past the cut count only in the *_full scores: 2 of 2 and of 2,002 -> 4/2004; bigrams -> 2/2002
    assert rouge_scores("alpha beta", "z " * 2000 + "alpha beta") == pytest.approx(
        {"rougeL": 0.0, "rouge1": 0.0, "rouge2": 0.0, "rougeL_full": 4 / 2004, "rouge1_full": 4 / 2004,
         "rouge2_full": 2 / 2002})


REFERENCE = "# fetcher\n\nFetch URLs.\n\n## Installation\n\npip install fetcher\n\n## Usage\n\nRun it.\n\n## License\n\nMIT\n"


@pytest.mark.parametrize(
    "heading, kinds",
    [
        ("## Installation", {"installation"}), ("## Getting Started", {"installation"}), ("## 📦 Install", {"installation"}),
        ("### Quick start", {"installation"}), ("Setup\n-----", {"installation"}), ("## Usage", {"usage"}),
        ("## Examples", {"usage"}), ("<h2>How to use</h2>", {"usage"}), ("## License", {"license"}),
        ("## Licence", {"license"}), ("## Contributing", {"contributing"}), ("## 🤝 Contributors", {"contributing"}),
        # the title and about-like sections are not scored: generation forces the title (a free 0.2 before)
        ("# fetcher", set()), ("fetcher\n====", set()), ("## About", set()), ("## Features", set()),
        ("## Configuration", set()),
    ],
)
def test_section_kinds_scores_only_installation_usage_license_contributing(heading, kinds):
    assert section_kinds(f"Some text.\n\n{heading}\n\nMore text.\n") == kinds


@pytest.mark.parametrize(
    "text",
    [
        "Install it with pip. Usage is simple. MIT license.",  # words in prose are not sections
        "```\n# Installation\n## Usage\n```\n",  # comments inside code are not headings
        "- item\n----\n",  # a list item over a rule is not a setext heading
    ],
)
def test_section_kinds_ignore_what_is_not_a_heading(text):
    assert section_kinds(text) == set()


@pytest.mark.parametrize(
    "prediction, reference, coverage",
    [
        ("# t\n\n## Install\n\nx\n\n## License\n\nMIT", REFERENCE, 2 / 3),
        ("# t\n\n## Installation\n\n## Usage\n\n## License\n\n## Contributing\n", REFERENCE, 1.0),  # extras cost nothing
        ("# fetcher\n\nA title and prose only.", REFERENCE, 0.0),  # the forced title earns nothing
        ("# t\n\n## Usage\n", "# fetcher\n\nOnly prose.", None),  # nothing to cover: not scored at all
    ],
)
def test_section_coverage(prediction, reference, coverage):
    assert section_coverage(prediction, reference) == coverage


@pytest.mark.parametrize(
    "text, found",
    [
        ("```bash\npip install fetcher\n```", ["pip install fetcher"]),
        ("- `pip install fetcher`\n1. $ npm install -g fetcher", ["pip install fetcher", "npm install -g fetcher"]),
        ("Run cargo add serde and go get x.", []),  # mid-sentence is not a command line
        ("    go install example.com/x@latest", ["go install example.com/x@latest"]),
    ],
)
def test_install_commands_in(text, found):
    assert install_commands_in(text) == found


@pytest.mark.parametrize(
    "text, ok",
    [
        ("```bash\npip install fetcher\n```", True),
        ("$ pip install fetcher", True),
        ("pip install requests\npip install fetcher", True),  # a dependency the manifest names is no contradiction
        ("pip install fetcher\npip install numpy", False),  # numpy is not in the manifest
        ("npm install fetcher", False),  # another ecosystem's command
        ("pip install fetcher-cli", False),  # another package
        ("Fetch URLs.", False),  # the install command is missing
    ],
)
def test_install_ok(text, ok):
    assert install_ok(text, FACTS, EVIDENCE) is ok


@pytest.mark.parametrize("install", [(), ("docker build -t svc .",)])
def test_install_ok_is_not_scored_without_a_manifest_install_command(install):
    facts = RepoFacts(name="svc", install=install)
    assert install_ok("docker build -t svc .", facts, EVIDENCE) is None


@pytest.mark.parametrize(
    "text, ok",
    [
        ("# fetcher\n", True), ("# Fetcher\n", True), ("fetcher\n=======\n", True),
        ('<h1 align="center">fetcher</h1>', True), ("# fetcher-\n", True),  # case and separators do not count
        ("## fetcher\n", False),  # not an H1
        ("# repo\n", False), ("# The fetcher\n", False), ("# fetcher_cli\n", False), ("No heading.\n", False),
    ],
)
def test_title_ok(text, ok):
    assert title_ok(text, FACTS, "octo/fetcher") is ok


def test_title_ok_accepts_the_package_name():
    facts = RepoFacts(name="poet", package="poetry-kit")
    assert [title_ok(t, facts, "octo/repo") for t in ("# poetry-kit", "# repo", "# poet", "# kit")] == [True, True, True, False]


@pytest.mark.parametrize(
    "text, is_degenerate",
    [
        ("a line\na line\na line", True),  # a line three times is a loop
        ("  a line\na line\na line  ", True),  # however it is indented
        ("a line\na line\nother", False),  # twice is allowed
        ("}\n}\n}\n}", False),  # short lines repeat in real READMEs
        ("```\nx\n```\n```\ny\n```\n```\nz\n```", False),  # so do fences
        ("x " + "=" * 20, True),  # a run of 20 equal symbols
        ("x " + "=" * 19, False),
        ("-=" * 20, True),  # a line of 40 symbols
        ("-=" * 19 + "-", False),  # 39
        ("| a | b |\n|---|---|\n| 1 | 2 |", False),  # a table rule is not a symbol run
        ("| a |\n|" + "-" * 60 + "|\n| 1 |", False),
    ],
)
def test_degenerate(text, is_degenerate):
    assert degenerate(text) is is_degenerate


PREDICTION = """# fetcher

The CLI is `fetcher/cli.py`, its config `conf/app.yaml`. See https://github.com/octo/fetcher and https://example.com/x.

## Installation

```bash
pip install fetcher
```
"""


def test_score_readme_counts_every_trust_metric():
    scores = score_readme(PREDICTION, REFERENCE, FACTS, EVIDENCE, "octo/fetcher")
    rouge = rouge_scores(PREDICTION, REFERENCE)
    assert scores == {
        **rouge,
        "coverage": 1 / 3,  # installation of installation, usage, license
        "length_ratio": 181 / 97,  # characters of the prediction over the reference's
        "paths": 2, "unknown_paths": 1,  # fetcher/cli.py is in the tree, conf/app.yaml is not
        "urls": 2, "invented_urls": 1,  # the repository URL is a fact, example.com/x is not
        "install_ok": True, "title_ok": True, "degenerate": False,
        "lint_findings": 0, "broken_anchors": 0,
        # the one judged sentence, "The CLI is `fetcher/cli.py`, its config `conf/app.yaml`.", has 2 of 6 content
        # words in the repository (cli twice; not config, conf, app, yaml); the other is URLs and stop words
        "supported_prose": 0.0,
    }
    assert (len(PREDICTION), len(REFERENCE)) == (181, 97)


def _row(**metrics) -> dict:
    base = {"rougeL": 0.1, "rouge1": 0.2, "rouge2": 0.0, "rougeL_full": 0.1, "rouge1_full": 0.2, "rouge2_full": 0.0,
            "coverage": None, "length_ratio": 1.0,
            "paths": 0, "unknown_paths": 0, "urls": 0, "invented_urls": 0, "install_ok": None, "title_ok": True,
            "degenerate": False, "removed": 0, "lint_findings": 0, "broken_anchors": 0, "supported_prose": None}
    return {**base, **metrics}


def test_aggregate_pools_trust_rates_over_repositories():
    rows = [
        _row(rougeL=0.2, coverage=0.5, paths=3, unknown_paths=1, urls=1, invented_urls=1, install_ok=True, removed=2),
        _row(rougeL=0.4, coverage=None, paths=1, unknown_paths=1, urls=3, invented_urls=0, install_ok=False,
             title_ok=False, degenerate=True, removed=1),
        _row(rougeL=0.6, coverage=1.0, install_ok=None),
    ]
    summary = aggregate(rows, eval_loss=math.log(4.0), seconds=2.0, new_tokens=50)
    assert summary["rougeL"] == pytest.approx(0.4)
    assert summary["coverage"] == pytest.approx(0.75)  # None is not a zero: only repositories with sections
    assert summary["hallucinated_path_rate"] == 2 / 4  # pooled: 2 unknown of 4 mentioned, not mean(1/3, 1/1)
    assert summary["invented_url_rate"] == 1 / 4
    assert summary["invented_urls"] == "1 of 4"
    assert summary["install_ok"] == 1 / 2  # of the repositories with a manifest install command
    assert summary["title_ok"] == 2 / 3
    assert summary["degenerate"] == 1
    assert summary["removed_by_grounding"] == 3
    assert summary["perplexity"] == pytest.approx(4.0)
    assert (summary["generation_s"], summary["tokens_per_s"]) == (2.0, 25.0)


def test_aggregate_with_nothing_mentioned_and_no_model():
    summary = aggregate([_row()], eval_loss=None, seconds=0.5, new_tokens=0)
    assert (summary["hallucinated_path_rate"], summary["invented_url_rate"], summary["install_ok"]) == (0.0, 0.0, None)
    assert (summary["eval_loss"], summary["perplexity"], summary["tokens_per_s"]) == (None, None, None)
    assert summary["rougeL_ci"] == [0.1, 0.1]


@pytest.mark.parametrize(
    "values, mean, ci",
    [
        ([], None, None),
        ([None, None], None, None),
        ([0.5], 0.5, [0.5, 0.5]),  # one value: no spread to estimate
        # mean 2, sd 1, 2 degrees of freedom -> t = 4.302652729749462 (scipy.stats.t.ppf(0.975, 2)), half-width t / sqrt(3)
        ([1, 2, 3], 2.0, [2 - 4.302652729749462 / math.sqrt(3), 2 + 4.302652729749462 / math.sqrt(3)]),
        # None is skipped: [1, 3] -> mean 2, sd sqrt(2), 1 degree of freedom -> t = 12.706204736174694, half-width t
        ([None, 1, 3], 2.0, [2 - 12.706204736174694, 2 + 12.706204736174694]),
        # 12 values: 11 degrees of freedom -> t = 2.200985160091639 (the old table rounded up to 12's 2.18: too narrow)
        ([0, 1] * 6, 0.5, [0.5 - 2.200985160091639 * math.sqrt(12 / 44) / math.sqrt(12),
                           0.5 + 2.200985160091639 * math.sqrt(12 / 44) / math.sqrt(12)]),
        # 199 degrees of freedom -> t = 1.9719565442517533 (the old table used the normal 1.96 past 120)
        ([0, 1] * 100, 0.5, [0.5 - 1.9719565442517533 * math.sqrt(50 / 199) / math.sqrt(200),
                             0.5 + 1.9719565442517533 * math.sqrt(50 / 199) / math.sqrt(200)]),
    ],
)
def test_mean_ci(values, mean, ci):
    got_mean, got_ci = mean_ci(values)
    assert got_mean == (pytest.approx(mean, rel=1e-12) if mean is not None else None)
    assert got_ci == (pytest.approx(ci, rel=1e-12) if ci is not None else None)


def _sample(repo: str, index: int) -> SftSample:
    return SftSample(instruction="Write it.", input=SampleInput(file_tree=("a.py",), project_type="unknown"),
                     content=f"## Usage\n\n{repo} {index}", repo_url=f"https://github.com/o/{repo}", repo=repo,
                     kind="section", split="test", section="usage")


@pytest.mark.parametrize(
    "limit, order",
    [
        (0, []),
        (2, ["alpha 0", "beta 0"]),
        # one repository at a time in turn (sorted by URL), each in its own order, until the limit
        (5, ["alpha 0", "beta 0", "gamma 0", "alpha 1", "gamma 1"]),
        (99, ["alpha 0", "beta 0", "gamma 0", "alpha 1", "gamma 1", "alpha 2"]),
    ],
)
def test_round_robin_takes_one_repository_at_a_time(limit, order):
    samples = [_sample("gamma", 0), _sample("alpha", 0), _sample("alpha", 1), _sample("gamma", 1),
               _sample("alpha", 2), _sample("beta", 0)]
    assert [s.content.split("\n\n")[1] for s in round_robin(samples, limit)] == order


# ---- what a reader sees: Markdown that renders, prose the repository supports --------------------

BROKEN_MARKDOWN = """# fetcher

See [Package Overview](#package-overview) and [Usage](#usage).

### Features

1. Fetches URLs.
3. Retries.

## Usage
- run it
# Another title

```bash
fetch --help
"""


def test_lint_findings_count_each_stated_rule_on_a_hand_made_readme():
    found = {rule: n for rule, n in lint_findings(BROKEN_MARKDOWN).items() if n}
    assert found == {
        "MD001": 1,  # "### Features" right under the H1
        "MD029": 1,  # a numbered list running 1, 3
        "MD032": 2,  # "- run it" has no blank line above (its heading) nor below (the next heading): one each
        "MD025": 1,  # a second H1
        "unclosed-fence": 1,  # the bash block never closes: the rest would render as code
        "broken-anchor": 1,  # #package-overview is no heading; #usage is
    }


def test_clean_markdown_has_no_findings():
    clean = "# fetcher\n\nFetch URLs.\n\n## Usage\n\n1. Run it.\n2. Read [the usage](#usage).\n\n```bash\nfetch\n```\n"
    assert sum(lint_findings(clean).values()) == 0
    assert unclosed_fences(clean) == 0 and unclosed_fences("```\ncode\n") == 1 and unclosed_fences("~~~\n") == 1


SUPPORTED = """# fetcher

Fetch URLs. Fetcher reads documentation from readthedocs and requests pages.
It ships a Kubernetes operator with telemetry.

## Installation

```bash
pip install fetcher
```

## Contributing

Contributions are welcome. See [.github/CONTRIBUTING.md](.github/CONTRIBUTING.md) for how to get started.

- Written with docs and tests.
"""


def test_model_sentences_leave_out_headings_code_and_what_the_facts_rendered():
    assert model_sentences(SUPPORTED, FACTS) == [
        "Fetch URLs.", "Fetcher reads documentation from readthedocs and requests pages.",
        "It ships a Kubernetes operator with telemetry.", "Written with docs and tests.",
    ]


def test_supported_prose_share_on_a_hand_made_readme():
    # content words, without stop words and the project's name, against pyproject.toml, the Makefile and the tree:
    # "fetch urls"                                           2/2 found -> supported
    # "reads documentation readthedocs requests pages"       3/5 (documentation, readthedocs, requests) -> supported
    # "ships kubernetes operator telemetry"                  0/4 -> not
    # "written docs tests"                                   2/3 (docs/, tests/) -> supported
    assert supported_prose_share(SUPPORTED, FACTS, EVIDENCE, "octo/fetcher") == 3 / 4
    assert supported_prose_share("# fetcher\n\n## Usage\n\n```bash\nfetch\n```\n", FACTS, EVIDENCE, "octo/fetcher") is None


def test_aggregate_gives_the_reader_metrics_intervals():
    rows = [_row(lint_findings=3, broken_anchors=2, supported_prose=0.5), _row(lint_findings=1, supported_prose=1.0),
            _row(lint_findings=2, supported_prose=None)]
    summary = aggregate(rows, eval_loss=None, seconds=1.0, new_tokens=0)
    assert summary["lint_findings"] == 2.0 and summary["lint_findings_ci"][1] > 2.0  # a count: no cap at 1
    assert summary["broken_anchors"] == pytest.approx(2 / 3)
    assert summary["supported_prose"] == 0.75  # None (no model sentence) is not a zero


def test_an_empty_readme_has_no_lint_findings():
    # pymarkdownlnt refuses an empty string ("path_to_scan cannot be empty"); score_readme("") must not crash
    from moxi_pipeline.evaluation.metrics import LINT_RULES, lint_findings

    assert lint_findings("") == {**dict.fromkeys(LINT_RULES, 0), "unclosed-fence": 0, "broken-anchor": 0}


def test_a_readme_the_linter_cannot_read_leaves_lint_unknown_not_the_evaluation_dead(monkeypatch):
    # pymarkdownlnt 0.9.41 raised BadPluginError ("invalid literal for int()") on one dev.jsonl README and took
    # an 11-minute `moxi evaluate` down with it
    from pymarkdown.api import PyMarkdownApi, PyMarkdownApiException

    from moxi_pipeline.evaluation.metrics import lint_findings

    def crash(self, text):
        raise PyMarkdownApiException("BadPluginError encountered while scanning")

    monkeypatch.setattr(PyMarkdownApi, "scan_string", crash)
    assert lint_findings("# a\n\n1. x\n") is None
