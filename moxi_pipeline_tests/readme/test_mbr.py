"""`mbr`: minimum-Bayes-risk selection keeps the draft that agrees most with the others."""

from __future__ import annotations

import pytest

from moxi_pipeline.readme.mbr import consensus_index, lcs_length, rouge_l_f1, words


@pytest.mark.parametrize("a, b, expected", [
    ("a b c d", "a c d", 3), ("a b c", "d e f", 0), ("", "a", 0), ("x a y b z c", "a b c", 3),
])
def test_lcs_length(a, b, expected):
    assert lcs_length(a.split(), b.split()) == expected


def test_rouge_l_f1_exact():
    # LCS 3 of 4 and 3 tokens: precision 3/4, recall 3/3 -> F1 = 2*0.75*1/1.75
    assert rouge_l_f1("a b c d".split(), "a c d".split()) == pytest.approx(2 * 0.75 / 1.75)
    assert rouge_l_f1([], ["a"]) == 0.0


def test_the_consensus_draft_wins_over_the_outlier():
    drafts = [
        "A parser that reads TOML files and writes JSON.",  # outlier: another story
        "Renames files in bulk from the command line.",
        "Renames many files at once from the command line.",
        "It renames files in bulk, from the command line.",
    ]
    assert consensus_index(drafts) == 1  # agrees most with drafts 2 and 3
    assert words("It's A-OK") == ["it", "s", "a", "ok"]


def test_ties_go_to_the_earliest_draft_and_one_draft_is_itself():
    assert consensus_index(["same words", "same words"]) == 0
    assert consensus_index(["only"]) == 0
    with pytest.raises(ValueError, match="at least one draft"):
        consensus_index([])
