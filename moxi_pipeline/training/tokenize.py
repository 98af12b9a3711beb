"""The one tokenization of a prompt-completion sample, used by training and by evaluation's loss.

Why not hand TRL the text: truncation. TRL can only cut a whole sequence from one end. A README section
often outruns `max_length`, and an unusual repository's prompt can too (long Java/C# paths tokenize at
~2.6 characters a token): cutting the end may drop the whole completion, and TRL filters the sample out;
cutting the start drops the system prompt. `fit_to_length` instead keeps the completion's head and cuts
the middle of the prompt, so the system turn and the instruction (the prompt's last line) both survive.
Evaluation scores its loss on exactly these ids and this mask, so eval loss is measured on the
sequences training saw.
"""

from __future__ import annotations

from moxi_pipeline.readme.prompts import to_prompt_completion
from moxi_pipeline.records import SftSample

IGNORE_INDEX = -100  # the label torch's cross-entropy skips (the prompt's tokens)


def fit_to_length(
    prompt_ids: list[int], completion_ids: list[int], max_length: int, min_completion_tokens: int
) -> tuple[list[int], list[int]]:
    """Fit prompt + completion into max_length, keeping at least min_completion_tokens of the completion.

    The completion keeps its head. An over-long prompt loses its middle: the first half of its budget
    (system turn, first key file) and the last half (end of the tree, project line, instruction,
    assistant header) stay, so the model still sees the request it answers.
    """
    if len(prompt_ids) + len(completion_ids) <= max_length:
        return prompt_ids, completion_ids
    completion_budget = max(max_length - len(prompt_ids), min(len(completion_ids), min_completion_tokens))
    completion_ids = completion_ids[:completion_budget]
    prompt_budget = max_length - len(completion_ids)
    if len(prompt_ids) > prompt_budget:
        head = prompt_budget // 2
        prompt_ids = prompt_ids[:head] + prompt_ids[len(prompt_ids) - (prompt_budget - head) :]
    return prompt_ids, completion_ids


def chat_text(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def tokenize_sample(tokenizer, sample: SftSample, max_length: int, min_completion_tokens: int) -> dict:
    """input_ids + completion_mask (1 on completion tokens) for one sample, chat template applied.

    Prompt and completion are tokenized apart, as at inference (prompt ids, then generated ids): tokenizing
    the joined text would let BPE merge across the boundary (e.g. a completion opening with a newline).
    """
    pair = to_prompt_completion(sample)
    prompt_text = chat_text(tokenizer, pair["prompt"], add_generation_prompt=True)
    full_text = chat_text(tokenizer, pair["prompt"] + pair["completion"], add_generation_prompt=False)
    if not full_text.startswith(prompt_text):
        raise ValueError(
            f"sample from {sample.repo_url!r}: the chat template renders the prompt differently once the "
            "answer follows it, so the completion cannot be located"
        )
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(full_text[len(prompt_text) :], add_special_tokens=False)["input_ids"]
    prompt_ids, completion_ids = fit_to_length(prompt_ids, completion_ids, max_length, min_completion_tokens)
    return {
        "input_ids": prompt_ids + completion_ids,
        "completion_mask": [0] * len(prompt_ids) + [1] * len(completion_ids),
    }


def completion_labels(row: dict) -> list[int]:
    """Labels for a tokenized row: the next-token targets on completion tokens, IGNORE_INDEX on the prompt
    (what TRL's collator builds from `completion_mask`)."""
    return [tok if mask else IGNORE_INDEX for tok, mask in zip(row["input_ids"], row["completion_mask"])]
