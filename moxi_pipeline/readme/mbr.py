"""Minimum-Bayes-risk selection: of several sampled drafts of one section, keep the one that agrees most
with the others.

Each draft is scored by its mean ROUGE-L F1 (longest common subsequence of lower-cased word tokens) against
every other draft; the consensus draft is the one a reader would most expect, and an odd draft that
wandered off (an invented feature, a loop) scores low because no other draft says the same. The utility is
the metric README quality is scored by, the usual choice for MBR (Kumar and Byrne, 2004; Freitag et al.,
2022). Ties go to the earliest draft, so the result is deterministic for given drafts.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence, O(len(a) * len(b)) with one row of memory."""
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for token in a:
        previous_diagonal = 0
        for j, other in enumerate(b, start=1):
            above = row[j]
            row[j] = previous_diagonal + 1 if token == other else max(row[j], row[j - 1])
            previous_diagonal = above
    return row[-1]


def rouge_l_f1(a: list[str], b: list[str]) -> float:
    if not a or not b:
        return 0.0
    common = lcs_length(a, b)
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


def consensus_index(drafts: list[str]) -> int:
    """The index of the draft with the highest mean ROUGE-L F1 against the others (0 for one draft)."""
    if not drafts:
        raise ValueError("consensus_index needs at least one draft")
    tokens = [words(draft) for draft in drafts]
    scores = []
    for i, mine in enumerate(tokens):
        others = [rouge_l_f1(mine, theirs) for j, theirs in enumerate(tokens) if j != i]
        scores.append(sum(others) / len(others) if others else 0.0)
    return max(range(len(drafts)), key=lambda i: (scores[i], -i))
