"""benchmarks/outline_ceiling.py: the real README's own sections put through the generated README's outline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from moxi_pipeline_tests.readme.test_facts import record

_SPEC = importlib.util.spec_from_file_location(
    "outline_ceiling", Path(__file__).resolve().parents[2] / "benchmarks" / "outline_ceiling.py")
ceiling = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(ceiling)

README = """# fetcher

Fetch URLs in parallel, with retries and a progress bar.

## Features

- Parallel downloads over one connection pool
- Retries with backoff

## Usage

Run `fetch urls.txt` to download every URL in the file.

## License

MIT
"""


def test_it_picks_the_preamble_the_features_and_the_first_usage_section():
    sections = ceiling.real_sections(README)
    assert sections["about"].strip() == "Fetch URLs in parallel, with retries and a progress bar."
    assert sections["features"].strip().splitlines() == ["- Parallel downloads over one connection pool",
                                                          "- Retries with backoff"]
    assert sections["usage"].strip() == "Run `fetch urls.txt` to download every URL in the file."
    assert ceiling.real_sections("No heading at all.") == {"about": "No heading at all."}
    assert ceiling.real_sections("fetcher\n=======\n\nFetch URLs.\n")["about"].strip() == "Fetch URLs."


def test_a_section_is_cut_at_a_line_within_its_budget():
    assert ceiling.cut("one\ntwo\nthree", 8) == "one\ntwo"
    assert ceiling.cut("a line longer than the budget", 5) == ""


def test_the_real_sections_score_high_and_fall_with_their_budget():
    repo = record("fetcher", {"pyproject.toml": '[project]\nname = "fetcher"\ndescription = "Fetch URLs."\n'},
                  ("fetcher/__init__.py", "LICENSE"), "Python").model_copy(update={"readme": README})
    full, tiny = ceiling.ceiling_readme(repo, scale=1.0), ceiling.ceiling_readme(repo, scale=0.1)
    assert full["rougeL"] > 0.3 and full["unknown_paths"] == 0 and full["invented_urls"] == 0
    # at a tenth of the budgets (about 38 characters of About, 51 of Features) less of the real text fits
    assert tiny["rougeL"] < full["rougeL"] and tiny["length_ratio"] < full["length_ratio"]
