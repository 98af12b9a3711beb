"""Decoding for README sections: batched generation of what a 135M model writes.

`generate_ids`: left-padded prompts generated together with the KV cache, greedy with a repetition penalty
and no repeated n-grams within the answer and a cap on verbatim copies from the prompt (`AnswerGuards`),
stopping at `<|im_end|>` or where the model starts the next heading; optionally context-aware
(`ContextContrast`). What comes out is cleaned by `cleaning.clean_section`.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass

# (label, done, total): one call per finished README, for tqdm in the CLI or a log line in Dagster.
Progress = Callable[[str, int, int], None]

END_OF_TURN = "<|im_end|>"


@dataclass(frozen=True)
class DecodingConfig:
    max_new_tokens: int = 384  # ~1,500 characters: a README's top half, where most of its sections start
    # >1 pushes away from tokens the answer already used (not the prompt's). Off by default: at 1.15 the SmolLM2
    # DPO model scored 0.110 ROUGE-L on dev.jsonl, at 1.0 0.116 (docs/results.md, row 13)
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 6  # no n-gram twice within the answer; 0 turns it off
    max_prompt_copy: int = 12  # longest verbatim run copied from the prompt: a name or command, not a key file; 0: any
    temperature: float = 0.0  # 0 -> greedy, deterministic; > 0 samples
    top_p: float = 1.0  # only used when sampling
    seed: int = 0  # only used when sampling
    batch_size: int = 8  # left-padded prompts generated together: 4.35x the tokens/s of one at a time here
    stop_at_heading: bool = True  # a section ends where the model starts the next heading ("\n#")
    # Minimum-Bayes-risk decoding (readme/mbr.py): sample this many drafts per section and keep the one that
    # agrees most with the others (ROUGE-L); 0 or 1 decodes once, with `temperature` (greedy by default).
    mbr_candidates: int = 0
    mbr_temperature: float = 0.7  # sampling temperature of the MBR drafts
    # each model-written section's token budget (compose.SECTION_TOKENS) times this; max_new_tokens still caps it
    section_tokens_scale: float = 1.0
    # a section may not end (end of turn, or a new heading) before this share of its budget: the fine-tuned
    # models stop after two Features items whatever the budget; 0 lets the model end where it likes
    min_section_share: float = 0.0
    # context-aware decoding (Shi et al. 2023, "Trusting Your Evidence"): each next-token log-probability is
    # (1 + a) * log p(token | facts, key files, tree) - a * log p(token | the project's name alone), which favours what
    # the repository's own text makes likely over what any project's README would say; 0 turns it off
    context_contrast: float = 0.0

    def __post_init__(self) -> None:
        checks = {
            "max_new_tokens": self.max_new_tokens >= 1,
            "repetition_penalty": self.repetition_penalty > 0,
            "no_repeat_ngram_size": self.no_repeat_ngram_size >= 0,
            "max_prompt_copy": self.max_prompt_copy >= 0,
            "temperature": self.temperature >= 0,
            "top_p": 0 < self.top_p <= 1,
            "batch_size": self.batch_size >= 1,
            "mbr_candidates": self.mbr_candidates >= 0,
            "mbr_temperature": self.mbr_temperature > 0,
            "section_tokens_scale": self.section_tokens_scale > 0,
            "min_section_share": 0 <= self.min_section_share <= 1,
            "context_contrast": self.context_contrast >= 0,
        }
        for field, ok in checks.items():
            if not ok:
                raise ValueError(f"DecodingConfig.{field} is out of range: {getattr(self, field)!r}")

    def generate_kwargs(self) -> dict:
        """generate()'s own settings; the repetition guards are `AnswerGuards`, so HF's are switched off
        (1.0 and 0 also override a model's generation_config.json)."""
        kwargs = {
            "max_new_tokens": self.max_new_tokens,
            "repetition_penalty": 1.0,
            "no_repeat_ngram_size": 0,
            "do_sample": self.temperature > 0,
        }
        if self.temperature > 0:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        return kwargs


def stop_token_ids(tokenizer) -> list[int]:
    """eos plus `<|im_end|>` when the vocabulary has it (SmolLM2: both are id 2)."""
    ids = {tokenizer.eos_token_id}
    end_of_turn = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    if isinstance(end_of_turn, int) and end_of_turn != tokenizer.unk_token_id:
        ids.add(end_of_turn)
    return sorted(i for i in ids if i is not None)


def generate_ids(model, tokenizer, prompts: list[list[int]], decoding: DecodingConfig,
                 min_new_tokens: list[int] | None = None,
                 plain_prompts: list[list[int]] | None = None) -> list[list[int]]:
    """New token ids per prompt; prompts are left-padded into one batch (the caller sizes it).
    `min_new_tokens`: per prompt, how many new tokens come before it may end (no end of turn, no new heading).
    `plain_prompts`: per prompt, the same request without the repository's context, which `context_contrast` needs."""
    import torch

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids, attention_mask = _left_pad(prompts, pad_id)
    width = input_ids.shape[1]
    processors = [AnswerGuards(input_ids, attention_mask, decoding)]
    if decoding.context_contrast > 0:
        if plain_prompts is None or len(plain_prompts) != len(prompts):
            raise ValueError("DecodingConfig.context_contrast needs one plain prompt per prompt (plain_prompts)")
        plain_ids, plain_mask = _left_pad(plain_prompts, pad_id)
        processors.insert(0, ContextContrast(model, plain_ids, plain_mask, width, decoding.context_contrast))
    if any(min_new_tokens or ()):
        processors.append(MinimumLength(tokenizer, width, min_new_tokens))
    if decoding.temperature > 0:
        torch.manual_seed(decoding.seed)
    with torch.no_grad():
        out = model.generate(
            input_ids=input_ids.to(model.device),
            attention_mask=attention_mask.to(model.device),
            eos_token_id=stop_token_ids(tokenizer),
            pad_token_id=pad_id,
            **({"stop_strings": ["\n#"], "tokenizer": tokenizer} if decoding.stop_at_heading else {}),
            logits_processor=processors,
            **decoding.generate_kwargs(),
        )
    return [_strip_padding(row[width:].tolist(), pad_id) for row in out]


class AnswerGuards:
    """The repetition penalty and no-repeat n-grams over the answer only, and a cap on prompt copies.

    HF's own `repetition_penalty` and `no_repeat_ngram_size` count the prompt as well. Here the prompt is
    the repository's facts, key files and tree, so they push the model away from the project's own names,
    terms and commands, towards invented ones. Measured on the 41 unseen dev.jsonl repositories, counting
    the answer only (with copies capped at 12 tokens) raised ROUGE-L from 0.103 to 0.106 for the base model
    and from 0.100 to 0.108 for the fine-tuned one, with no more invented paths or URLs. The cap keeps what
    the prompt's n-gram ban used to prevent: the model echoing a key file back.
    """

    def __init__(self, input_ids, attention_mask, decoding: DecodingConfig):
        from transformers.generation.logits_process import (
            NoRepeatNGramLogitsProcessor,
            RepetitionPenaltyLogitsProcessor,
        )

        self.start = input_ids.shape[1]  # new tokens begin here in every row (prompts are left-padded)
        self.penalty = (RepetitionPenaltyLogitsProcessor(decoding.repetition_penalty, prompt_ignore_length=self.start)
                        if decoding.repetition_penalty != 1.0 else None)
        self.no_repeat = NoRepeatNGramLogitsProcessor(decoding.no_repeat_ngram_size) if decoding.no_repeat_ngram_size else None
        self.max_copy = decoding.max_prompt_copy
        self.continuations = [_continuations(row[mask.bool()].tolist(), self.max_copy) if self.max_copy else {}
                              for row, mask in zip(input_ids, attention_mask)]

    def __call__(self, input_ids, scores):
        if self.penalty is not None:
            scores = self.penalty(input_ids, scores)
        if self.no_repeat is not None:
            scores = self.no_repeat(input_ids[:, self.start :], scores)
        if self.max_copy and input_ids.shape[1] > self.start:
            for row, (ids, continuations) in enumerate(zip(input_ids.tolist(), self.continuations)):
                banned = continuations.get(tuple(ids[-self.max_copy :]))
                if banned:
                    scores[row, list(banned)] = -float("inf")
        return scores


class ContextContrast:
    """Context-aware decoding: `(1 + alpha) * log p(. | prompt) - alpha * log p(. | plain prompt)` per row.

    The plain prompts (the request with the project's name but no facts, key files or tree) run through the same
    model beside generation, with their own KV cache, and are fed each token generation picks. Tokens the guards
    or the minimum length set to -inf stay there: they run after this."""

    def __init__(self, model, plain_ids, plain_mask, start: int, alpha: float):
        self.model, self.alpha, self.start = model, alpha, start
        self.ids, self.mask = plain_ids.to(model.device), plain_mask.to(model.device)
        self.cache = None

    def __call__(self, input_ids, scores):
        import torch

        new = input_ids[:, self.start :]
        if self.cache is None:  # the plain prompt, and whatever was generated before the first call (nothing)
            ids = torch.cat([self.ids, new], dim=1)
            self.mask = torch.cat([self.mask, torch.ones_like(new)], dim=1)
        else:
            ids = new[:, -1:]
            self.mask = torch.cat([self.mask, torch.ones_like(ids)], dim=1)
        positions = (self.mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1] :]
        with torch.no_grad():
            out = self.model(input_ids=ids, attention_mask=self.mask, position_ids=positions, cache=self.cache,
                             use_cache=True, logits_to_keep=1)
        self.cache = out.cache
        plain = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
        given = torch.log_softmax(scores.float(), dim=-1)
        return (given + self.alpha * (given - plain)).to(scores.dtype)


class MinimumLength:
    """Per row, no end of turn and no new heading (`\n#`, which stops a section) before its minimum of new tokens.

    HF's `min_new_tokens` holds back the end-of-sequence token only, and one minimum for the whole batch; a
    section also ends where the model opens the next heading, so the tokens that would open one go too."""

    def __init__(self, tokenizer, start: int, min_new_tokens: list[int]):
        self.start = start
        self.minimum = list(min_new_tokens)
        holding_heading, self.after_newline, self.ends_line = _heading_tokens(tokenizer)
        self.stops = sorted({*stop_token_ids(tokenizer), *holding_heading})

    def __call__(self, input_ids, scores):
        written = input_ids.shape[1] - self.start
        for row, minimum in enumerate(self.minimum):
            if written >= minimum:
                continue
            scores[row, self.stops] = -float("inf")
            if int(input_ids[row, -1]) in self.ends_line:
                scores[row, self.after_newline] = -float("inf")
        return scores


# per tokenizer object, for as long as it lives (one vocabulary pass, not one per batch)
_HEADING_TOKENS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _heading_tokens(tokenizer) -> tuple[list[int], list[int], set[int]]:
    """(ids holding "\n#", ids opening with "#", ids ending a line) of a tokenizer's vocabulary."""
    if tokenizer not in _HEADING_TOKENS:
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        _HEADING_TOKENS[tokenizer] = ([i for i, t in enumerate(texts) if re.search(r"\n {0,3}#", t)],
                                      [i for i, t in enumerate(texts) if t.lstrip(" ").startswith("#")],
                                      {i for i, t in enumerate(texts) if t.endswith("\n")})
    return _HEADING_TOKENS[tokenizer]


def _left_pad(prompts: list[list[int]], pad_id: int):
    """(input_ids, attention_mask) of prompts left-padded to the longest."""
    import torch

    width = max(len(ids) for ids in prompts)
    return (torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in prompts]),
            torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts]))


def _continuations(ids: list[int], n: int) -> dict[tuple[int, ...], set[int]]:
    """Each n-token run of `ids` -> the tokens that follow it there."""
    following: dict[tuple[int, ...], set[int]] = {}
    for i in range(len(ids) - n):
        following.setdefault(tuple(ids[i : i + n]), set()).add(ids[i + n])
    return following


def _strip_padding(ids: list[int], pad_id: int) -> list[int]:
    """A row that stopped before the batch's longest is filled up with pad_id: those are not new tokens."""
    end = len(ids)
    while end and ids[end - 1] == pad_id:
        end -= 1
    return ids[:end]
