"""README inference: the prompt, the decoding discipline, and the clean-up of what a 135M model writes.

Quality for SmolLM2-135M comes from discipline more than from the model (ROUGE-L against the real
README on unseen repositories: zero-shot plain 0.050, disciplined 0.102 in the design notes;
`benchmarks/bench_generate.py` on 8 dev repositories at 256 new tokens: 0.056 -> 0.067). The discipline:
- the prompt is `prompts.build_messages` (key files, tree, then the instruction last) in the chat template;
- the assistant turn is forced to open with `prompts.response_prefix(repo)` ("# <repo>\\n"), so the
  model starts a README instead of chatting or echoing the key files;
- greedy decoding with a repetition penalty and no repeated n-grams, stopping at `<|im_end|>`;
- `clean_readme` cuts the degenerate tails that remain (key-file dumps, letter-soup lines, loops,
  an open code fence, a dangling last heading).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from moxi_pipeline.instructions import readme_instruction
from moxi_pipeline.prompts import build_messages, response_prefix
from moxi_pipeline.records import SampleInput

# (label, done, total): one call per finished README, for tqdm in the CLI or a log line in Dagster.
Progress = Callable[[str, int, int], None]

LATEST_FILE = "LATEST"
ADAPTER_CONFIG = "adapter_config.json"
TRAINING_CONFIG = "training_config.json"
END_OF_TURN = "<|im_end|>"
# A line seen this many times already is a loop: greedy decoding never leaves one once it is in it.
MAX_LINE_REPEATS = 2
# Lines shorter than this ("}", "---", "|", "- ") repeat legitimately in real READMEs.
MIN_REPEAT_LINE_CHARS = 4

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
# Echoes of `prompts.render_input`: "--- path ---" blocks and its section labels.
_ECHO = re.compile(r"^(--- \S.* ---|Key files:|File tree:|Project: .+\(.+\))\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(\s|$)")
_INLINE_FENCE = re.compile(r"^\s*`{3}[^`]*`{3}\s*$")  # "```cpp```": a fence opened and closed on one line
_STRAY_FENCE = re.compile(r"(?<=\S)\s*`{3,}\s*$")  # "pip install x```": a fence glued to text
_FINISHED = (".", "!", "?", ":", ")", "`", "*", "|")
_LIST_MARK = re.compile(r"^\s*([-*+]|\d+[.)])\s")
# 40+ letters with no space, digit or slash: no English word or identifier; it is what greedy decoding
# under a repetition penalty emits once it runs out of allowed tokens ("npmjimiemlitekomit...").
_GIBBERISH = re.compile(r"[A-Za-z]{40,}")


@dataclass(frozen=True)
class DecodingConfig:
    max_new_tokens: int = 384  # ~1,500 characters: a README's top half, where most of its sections start
    repetition_penalty: float = 1.15  # >1 pushes away from tokens already in prompt or output
    no_repeat_ngram_size: int = 6  # 0 turns it off; HF counts the prompt too, so this also blocks long copies
    temperature: float = 0.0  # 0 -> greedy, deterministic; > 0 samples
    top_p: float = 1.0  # only used when sampling
    seed: int = 0  # only used when sampling
    batch_size: int = 8  # left-padded prompts generated together: 3.8x the tokens/s of one at a time here
    stop_at_heading: bool = True  # a section ends where the model starts the next heading ("\n#")

    def __post_init__(self) -> None:
        checks = {
            "max_new_tokens": self.max_new_tokens >= 1,
            "repetition_penalty": self.repetition_penalty > 0,
            "no_repeat_ngram_size": self.no_repeat_ngram_size >= 0,
            "temperature": self.temperature >= 0,
            "top_p": 0 < self.top_p <= 1,
            "batch_size": self.batch_size >= 1,
        }
        for field, ok in checks.items():
            if not ok:
                raise ValueError(f"DecodingConfig.{field} is out of range: {getattr(self, field)!r}")

    def generate_kwargs(self) -> dict:
        kwargs = {
            "max_new_tokens": self.max_new_tokens,
            "repetition_penalty": self.repetition_penalty,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
            "do_sample": self.temperature > 0,
        }
        if self.temperature > 0:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        return kwargs


def build_prompt_ids(tokenizer, repo: str, sample_input: SampleInput, force_prefix: bool = True) -> list[int]:
    """Chat-template prompt ids, ending (when forced) with the tokens of `response_prefix(repo)`."""
    messages = build_messages(readme_instruction(repo, sample_input.project_type), sample_input, repo)
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(text, add_special_tokens=False).input_ids
    if force_prefix:
        ids = ids + tokenizer(response_prefix(repo), add_special_tokens=False).input_ids
    return ids


def stop_token_ids(tokenizer) -> list[int]:
    """eos plus `<|im_end|>` when the vocabulary has it (SmolLM2: both are id 2)."""
    ids = {tokenizer.eos_token_id}
    end_of_turn = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    if isinstance(end_of_turn, int) and end_of_turn != tokenizer.unk_token_id:
        ids.add(end_of_turn)
    return sorted(i for i in ids if i is not None)


def generate_ids(model, tokenizer, prompts: list[list[int]], decoding: DecodingConfig) -> list[list[int]]:
    """New token ids per prompt; prompts are left-padded into one batch (the caller sizes it)."""
    import torch

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(ids) for ids in prompts)
    input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in prompts])
    attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts])
    if decoding.temperature > 0:
        torch.manual_seed(decoding.seed)
    with torch.no_grad():
        out = model.generate(
            input_ids=input_ids.to(model.device),
            attention_mask=attention_mask.to(model.device),
            eos_token_id=stop_token_ids(tokenizer),
            pad_token_id=pad_id,
            **({"stop_strings": ["\n#"], "tokenizer": tokenizer} if decoding.stop_at_heading else {}),
            **decoding.generate_kwargs(),
        )
    return [row[width:].tolist() for row in out]


def generate_readmes(
    model, tokenizer, items: list[tuple[str, SampleInput]], decoding: DecodingConfig, progress: Progress | None = None
) -> list[str]:
    """One cleaned README per (repo, input), in order; `progress(repo, done, total)` after each."""
    readmes: list[str] = []
    for start in range(0, len(items), decoding.batch_size):
        batch = items[start : start + decoding.batch_size]
        prompts = [build_prompt_ids(tokenizer, repo, sample_input) for repo, sample_input in batch]
        for (repo, _), new_ids in zip(batch, generate_ids(model, tokenizer, prompts, decoding)):
            text = response_prefix(repo) + tokenizer.decode(new_ids, skip_special_tokens=True)
            readmes.append(clean_readme(text, repo))
            if progress is not None:
                progress(repo, len(readmes), len(items))
    return readmes


def generate_readme(model, tokenizer, repo: str, sample_input: SampleInput, decoding: DecodingConfig) -> str:
    return generate_readmes(model, tokenizer, [(repo, sample_input)], decoding)[0]


def clean_readme(text: str, repo: str) -> str:
    """Cut what a small model appends after the README proper; the result opens with the forced prefix."""
    prefix = response_prefix(repo)
    if not text.startswith(prefix):
        text = prefix + text.lstrip("\n")
    lines = text.split("\n")
    lines = _cut_at_echo(lines)
    lines = _drop_gibberish(lines)
    lines = _cut_at_loop(lines)
    lines = _close_fence(lines)
    lines = _drop_dangling_headings(lines)
    return "\n".join(lines).rstrip() + "\n"


def clean_section(text: str, prefix: str) -> str:
    """One section: the forced prefix and what follows, up to the next heading, cleaned like a README."""
    lines = text.split("\n")
    start = prefix.count("\n") + 1
    for index in range(start, len(lines)):
        if _HEADING.match(lines[index]) and not _inside_fence(lines[:index]):
            lines = lines[:index]
            break
    lines = [_STRAY_FENCE.sub("", line) for line in lines if not _INLINE_FENCE.match(line)]
    lines = _cut_at_echo(lines)
    lines = _drop_gibberish(lines)
    lines = _cut_at_loop(lines)
    lines = _close_fence(lines)
    lines = _trim_unfinished(lines, start)
    lines = _drop_dangling_headings(lines)
    return "\n".join(lines).rstrip()


def _trim_unfinished(lines: list[str], keep: int) -> list[str]:
    """A section cut by the token budget ends mid-sentence: back up to its last finished sentence."""
    lines = list(lines)
    while len(lines) > keep and not lines[-1].strip():
        lines.pop()
    if len(lines) <= keep or _FENCE.match(lines[-1]):
        return lines
    last = lines[-1].rstrip()
    if last.endswith(_FINISHED):
        return lines[:-1] if last.endswith(":") else lines
    cut = max(last.rfind(mark + " ") for mark in ".!?")
    if cut > 0 and not _LIST_MARK.match(last):
        return lines[:-1] + [last[: cut + 1]]
    return lines[:-1]


def _inside_fence(lines: list[str]) -> bool:
    return sum(1 for line in lines if _FENCE.match(line)) % 2 == 1


def _cut_at_echo(lines: list[str]) -> list[str]:
    """Everything from the first echoed prompt line on is a key-file dump, not README prose."""
    for index, line in enumerate(lines):
        if index > 0 and _ECHO.match(line.strip()):
            return lines[:index]
    return lines


def _drop_gibberish(lines: list[str]) -> list[str]:
    """Drop lines holding a run of letters no language has; the model often recovers on the next line."""
    return [line for line in lines if not _GIBBERISH.search(line)]


def _cut_at_loop(lines: list[str]) -> list[str]:
    """Cut at the first line already seen MAX_LINE_REPEATS times (fences and short lines exempt)."""
    seen: dict[str, int] = {}
    for index, line in enumerate(lines):
        key = line.strip()
        if len(key) < MIN_REPEAT_LINE_CHARS or _FENCE.match(key):
            continue
        if seen.get(key, 0) >= MAX_LINE_REPEATS:
            return lines[:index]
        seen[key] = seen.get(key, 0) + 1
    return lines


def _close_fence(lines: list[str]) -> list[str]:
    """An unclosed code fence at the end is closed when it holds code, dropped when it is empty."""
    open_at, marker = None, ""
    for index, line in enumerate(lines):
        match = _FENCE.match(line)
        if not match:
            continue
        if open_at is None:
            open_at, marker = index, match.group(1)
        elif _closes(line, marker):
            open_at = None
    if open_at is None:
        return lines
    body = [line for line in lines[open_at + 1 :] if line.strip()]
    if not body:
        return lines[:open_at]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines + [marker]


def _closes(line: str, marker: str) -> bool:
    """CommonMark: a closing fence is the opener's character, at least as long, with no info string."""
    fence = line.strip()
    return set(fence) == {marker[0]} and len(fence) >= len(marker)


def _drop_dangling_headings(lines: list[str]) -> list[str]:
    """A heading with nothing under it at the very end is a promise the model did not keep."""
    while len(lines) > 1 and (not lines[-1].strip() or _HEADING.match(lines[-1])):
        lines = lines[:-1]
    return lines


def resolve_adapter(adapter: str, adapters_dir: str | Path) -> Path:
    """'latest' -> the run named in `adapters_dir/LATEST`; anything else is an adapter directory path."""
    adapters_dir = Path(adapters_dir)
    if adapter == "latest":
        latest = adapters_dir / LATEST_FILE
        if not latest.is_file():
            raise ValueError(
                f"adapter='latest' but no adapter has been trained yet ({latest} is missing): "
                "train one first (`make demo`, or materialize the lora_adapter asset), or pass --adapter DIR"
            )
        name = latest.read_text().strip()
        if not name:
            raise ValueError(f"adapter='latest' but {latest} is empty; it should hold a run folder name")
        path = adapters_dir / name
    else:
        path = Path(adapter)
    if not (path / ADAPTER_CONFIG).is_file():
        raise ValueError(f"adapter {adapter!r}: {path} is not a PEFT adapter directory (no {ADAPTER_CONFIG})")
    return path


def base_model_of(adapter_dir: str | Path) -> Path:
    """The base model an adapter was trained on: training_config.json's base_model_dir, else PEFT's record."""
    adapter_dir = Path(adapter_dir)
    sources = ((TRAINING_CONFIG, "base_model_dir"), (ADAPTER_CONFIG, "base_model_name_or_path"))
    for filename, key in sources:
        path = adapter_dir / filename
        value = json.loads(path.read_text()).get(key) if path.is_file() else None
        if not value:
            continue
        if not (Path(value) / "config.json").is_file():
            raise ValueError(f"{path}: {key}={value!r} is not a model directory (no config.json there)")
        return Path(value)
    raise ValueError(
        f"adapter {adapter_dir}: neither {TRAINING_CONFIG} 'base_model_dir' nor {ADAPTER_CONFIG} "
        "'base_model_name_or_path' names the base model"
    )
