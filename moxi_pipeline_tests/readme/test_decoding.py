from __future__ import annotations

import pytest

from moxi_pipeline.readme.cleaning import clean_section
from moxi_pipeline.readme.decoding import (
    AnswerGuards,
    DecodingConfig,
    generate_ids,
    stop_token_ids,
)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from moxi_pipeline.models.base import load_model, load_tokenizer

    return load_model(tiny_model_dir, "cpu"), load_tokenizer(tiny_model_dir)


@pytest.mark.parametrize(
    "field, value",
    [("max_new_tokens", 0), ("repetition_penalty", 0.0), ("no_repeat_ngram_size", -1), ("max_prompt_copy", -1),
     ("temperature", -0.1),
     ("top_p", 0.0), ("top_p", 1.5), ("batch_size", 0)],
)
def test_decoding_config_rejects_out_of_range_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"DecodingConfig\.{field} .*{value!r}"):
        DecodingConfig(**{field: value})


def test_temperature_zero_is_greedy_and_positive_temperature_samples():
    # HF's own repetition settings are off: AnswerGuards applies them to the answer only
    assert DecodingConfig().generate_kwargs() == {
        "max_new_tokens": 384, "repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "do_sample": False,
    }
    sampled = DecodingConfig(temperature=0.7, top_p=0.9).generate_kwargs()
    assert (sampled["do_sample"], sampled["temperature"], sampled["top_p"]) == (True, 0.7, 0.9)


def test_stop_tokens_include_end_of_turn(tiny):
    _, tokenizer = tiny
    assert stop_token_ids(tokenizer) == [tokenizer.convert_tokens_to_ids("<|im_end|>")]


@pytest.fixture(scope="module")
def tiny_fp32(tiny_model_dir):
    """The tiny model in fp32. In bf16 its random logits tie (three of 512 tokens at exactly 0.2754 after
    the repetition penalty) and a padded batch shifts them by up to 0.002, so greedy picks differ from one
    prompt at a time; in fp32 they are the same computation to ~1e-7 and greedy decoding must agree exactly."""
    from moxi_pipeline.models.base import load_model, load_tokenizer

    return load_model(tiny_model_dir, "cpu").float(), load_tokenizer(tiny_model_dir)


def _prompts(tokenizer) -> list[list[int]]:
    texts = ["# tiny\n\nA small project", "## Usage\n\nRun `tiny --help` to see the options. Key files: pyproject.toml",
             "MIT."]
    return [tokenizer(text, add_special_tokens=False).input_ids for text in texts]


def test_batched_generation_equals_one_prompt_at_a_time(tiny_fp32):
    model, tokenizer = tiny_fp32
    prompts = _prompts(tokenizer)
    assert len({len(p) for p in prompts}) == 3  # different lengths: the batch really is left-padded
    decoding = DecodingConfig(max_new_tokens=16, stop_at_heading=False)
    single = [generate_ids(model, tokenizer, [prompt], decoding)[0] for prompt in prompts]
    assert generate_ids(model, tokenizer, prompts, decoding) == single
    assert [len(ids) for ids in single] == [16, 16, 16]


def test_a_row_that_stops_early_in_a_batch_carries_no_padding(tiny_fp32):
    import copy

    model, tokenizer = tiny_fp32
    prompts = _prompts(tokenizer)
    decoding = DecodingConfig(max_new_tokens=16, stop_at_heading=False)
    free = [generate_ids(model, tokenizer, [prompt], decoding)[0] for prompt in prompts]
    # make a token that the first prompt's greedy output reaches, and no other output holds, the end of turn
    stop = next(t for t in free[0][2:] if t not in free[1] + free[2] + free[0][:2])
    stopper = copy.deepcopy(tokenizer)
    stopper.eos_token = tokenizer.convert_ids_to_tokens(stop)
    batched = generate_ids(model, stopper, prompts, decoding)
    # the first row ends at the stop token (its count is real new tokens, for tokens/s); the others run on
    assert batched[0] == free[0][: free[0].index(stop) + 1]
    assert batched[1:] == free[1:]


def test_stop_at_heading_passes_the_stop_string():
    calls = []

    class Recorder:
        device = "cpu"

        def generate(self, input_ids, **kwargs):
            calls.append(kwargs)
            return input_ids

    class Tokenizer:
        pad_token_id, eos_token_id, unk_token_id = 0, 2, None

        def convert_tokens_to_ids(self, token):
            return 2

    tokenizer = Tokenizer()
    generate_ids(Recorder(), tokenizer, [[5, 6]], DecodingConfig())
    generate_ids(Recorder(), tokenizer, [[5, 6]], DecodingConfig(stop_at_heading=False))
    assert (calls[0]["stop_strings"], calls[0]["tokenizer"]) == (["\n#"], tokenizer)
    assert "stop_strings" not in calls[1]
    assert calls[0]["eos_token_id"] == [2] and calls[0]["pad_token_id"] == 0


USAGE = "## Usage\n\n"
ABOUT = "# tiny\n\nA small project. "


@pytest.mark.parametrize(
    "generated, prefix, expected",
    [
        # the section ends where the next heading starts
        (USAGE + "Run it.\n\n## License\n\nMIT", USAGE, "## Usage\n\nRun it."),
        # ... but not at a `#` comment inside a code block
        (USAGE + "```\n# comment\n```\nDone.", USAGE, "## Usage\n\n```\n# comment\n```\nDone."),
        # a sentence cut by the token budget backs up to the last finished one, in the first paragraph too
        (USAGE + "Run it. Then run the other thing with", USAGE, "## Usage\n\nRun it."),
        (ABOUT + "It parses files and", ABOUT, "# tiny\n\nA small project."),
        (ABOUT + "It parses files.\n\nIt also", ABOUT, "# tiny\n\nA small project. It parses files."),
        (USAGE + "- one\n- two\n- thr", USAGE, "## Usage\n\n- one\n- two"),
        # ... and never at an abbreviation or inside an open parenthesis
        (ABOUT + "It runs anywhere. It supports newer versions (e.g. 3.0 and", ABOUT,
         "# tiny\n\nA small project. It runs anywhere."),
        (ABOUT + "It reads files, i.e. CSV and", ABOUT, "# tiny\n\nA small project."),
        # ... even where the cut falls right after the abbreviation's dot (a list item so cut goes whole)
        (USAGE + "- Reads archives\n- Supports file paths (e.", USAGE, "## Usage\n\n- Reads archives"),
        (ABOUT + "It runs anywhere. It supports newer versions (e.", ABOUT, "# tiny\n\nA small project. It runs anywhere."),
        # a colon that now introduces nothing goes, and the heading left with nothing under it stays alone
        (USAGE + "Run `tiny`:", USAGE, "## Usage"),
        (USAGE, USAGE, "## Usage"),
        # an unclosed fence holding code is closed; "```cpp```" and a fence glued to text are dropped
        (USAGE + "```bash\ntiny --help\n", USAGE, "## Usage\n\n```bash\ntiny --help\n```"),
        # ... and a block the budget cut mid-line loses that unfinished line first (its only line: the block goes)
        (USAGE + "```js\nconst a = 1;\nconst [counter", USAGE, "## Usage\n\n```js\nconst a = 1;\n```"),
        (USAGE + "```js\nconst [counter", USAGE, "## Usage"),
        (USAGE + "```cpp```\nRun it.", USAGE, "## Usage\n\nRun it."),
        (USAGE + "Run `tiny`.```", USAGE, "## Usage\n\nRun `tiny`."),
        # a line of "=" under About's first sentence would make it a second title: it goes; in code it stays
        ("# tiny\n\nReDoc. " + "\n======\n\nIt renders docs.", "# tiny\n\nReDoc. ", "# tiny\n\nReDoc. \n\nIt renders docs."),
        # a dash line under About's opening made it a second-level heading; a lone one drew a rule (terminalizer)
        ("# tiny\n\nRecord it. " + "\n-----\n\n-----\n\nIt renders docs.", "# tiny\n\nRecord it. ",
         "# tiny\n\nRecord it. \n\n\nIt renders docs."),
        (USAGE + "```\nTitle\n=====\n```", USAGE, "## Usage\n\n```\nTitle\n=====\n```"),
        # an echo of the prompt's key files ends the section
        (USAGE + "Run it.\n--- pyproject.toml ---\n[project]", USAGE, "## Usage\n\nRun it."),
        (USAGE + "Run it.\n\nFile tree:\nsrc/tiny/cli.py", USAGE, "## Usage\n\nRun it."),
        # a line of 40+ letters is decoding collapse and goes; a 39-letter word stays
        (USAGE + "OK.\nnpmjimiemlitekomitamirilistykiyevadzhepise\nFine.", USAGE, "## Usage\n\nOK.\nFine."),
        (USAGE + "A " + "x" * 39 + " tool.", USAGE, "## Usage\n\nA " + "x" * 39 + " tool."),
        # a loop: the third copy of a line and everything after it is cut, and the second copy goes as a repeat
        (USAGE + "- fast parsing.\n- fast parsing.\n- fast parsing.\n- more.", USAGE,
         "## Usage\n\n- fast parsing."),
        # short lines repeat in real READMEs and are kept
        (USAGE + "```\n}\n}\n}\n```\nEnd.", USAGE, "## Usage\n\n```\n}\n}\n}\n```\nEnd."),
    ],
)
def test_clean_section(generated, prefix, expected):
    assert clean_section(generated, prefix) == expected


@pytest.mark.parametrize("line, dropped", [
    ("  *   ***********.JS", True),   # symbol soup a fine-tuned model wrote for a Features list
    ("**********", False),            # a thematic break is that symbol alone
    ("*" * 35, True),                 # ...but 35 stars are the tip of a star pyramid, not a rule
    ("=" * 3 + " x", False),          # symbols beside text, but too few for soup
    ("-" * 40, True),                 # not soup, but a rule inside a section goes too (_drop_setext_titles)
    ("| --- | --- |", False),         # table rule
    ("- **Fast**: no copies", False),  # bold is two stars
])
def test_symbol_soup_lines_are_dropped(line, dropped):
    assert (clean_section(f"## Features\n\n{line}\n- a real feature.", "## Features\n\n", cut_by_budget=False)
            == "## Features\n\n" + ("" if dropped else line + "\n") + "- a real feature.")


def test_the_forced_prefix_survives_a_filter_on_the_line_it_shares():
    # the model continued About's forced first sentence with letter soup: the soup goes, the title and
    # sentence stay (the whole line used to go, and the README lost its title)
    prefix = "# renamer\n\nRename files in bulk. "
    assert clean_section(prefix + "x" * 45 + "\nIt is fast.", prefix, cut_by_budget=False) == \
        "# renamer\n\nRename files in bulk. It is fast."
    assert clean_section(prefix + "*   ***********.JS", prefix, cut_by_budget=True) == "# renamer\n\nRename files in bulk."


def _guarded(prompt: list[list[int]], answer: list[list[int]], **decoding) -> list[list[float]]:
    """Scores (all 1.0 over a 10-token vocabulary) after AnswerGuards, for left-padded prompts (pad 0)."""
    import torch

    width = max(len(row) for row in prompt)
    padded = [[0] * (width - len(row)) + row for row in prompt]
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in prompt])
    guards = AnswerGuards(torch.tensor(padded), mask, DecodingConfig(**decoding))
    ids = torch.tensor([p + a for p, a in zip(padded, answer)])
    return guards(ids, torch.ones(len(prompt), 10)).tolist()


def test_the_repetition_penalty_counts_the_answer_not_the_prompt():
    scores = _guarded([[1, 2, 3]], [[4]], repetition_penalty=2.0, no_repeat_ngram_size=0, max_prompt_copy=0)
    # 4 was said in the answer: 1.0 / 2; 1, 2 and 3 are the prompt's (the project's own words): untouched
    assert scores == [[1.0, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0]]


def test_no_repeat_ngrams_within_the_answer_only():
    inf = -float("inf")
    # answer 5 6 7 5: the bigram (5, 6) was said, so 6 may not follow 5 again
    scores = _guarded([[5, 6, 9]], [[5, 6, 7, 5]], repetition_penalty=1.0, no_repeat_ngram_size=2, max_prompt_copy=0)
    assert scores[0][6] == inf and scores[0].count(inf) == 1
    # the prompt's bigram (6, 9) does not count: after the answer's 6, 9 is allowed
    scores = _guarded([[5, 6, 9]], [[7, 6]], repetition_penalty=1.0, no_repeat_ngram_size=2, max_prompt_copy=0)
    assert inf not in scores[0]


def test_a_copy_from_the_prompt_stops_at_max_prompt_copy_tokens():
    inf = -float("inf")
    prompt = [[1, 2, 3, 4, 5], [7, 1, 2, 3, 4, 5]]  # the first row is left-padded by one token
    # row 0 has copied 1 2 3 (3 tokens): the 4th, "4", is banned; row 1 has copied 2 3: it may go on
    scores = _guarded(prompt, [[1, 2, 3], [8, 2, 3]], repetition_penalty=1.0, no_repeat_ngram_size=0, max_prompt_copy=3)
    assert [row.count(inf) for row in scores] == [1, 0] and scores[0][4] == inf
    # max_prompt_copy=0 allows any copy
    scores = _guarded(prompt, [[1, 2, 3], [8, 2, 3]], repetition_penalty=1.0, no_repeat_ngram_size=0, max_prompt_copy=0)
    assert inf not in scores[0] + scores[1]


def test_minimum_length_holds_back_the_end_and_a_new_heading_until_each_rows_minimum(tiny):
    import torch

    from moxi_pipeline.readme.decoding import MinimumLength

    _, tokenizer = tiny
    newline = tokenizer("a\n", add_special_tokens=False).input_ids[-1]
    assert tokenizer.decode([newline]).endswith("\n")
    hash_id = next(i for i in range(len(tokenizer)) if tokenizer.decode([i]).startswith("#"))
    word = tokenizer("hello", add_special_tokens=False).input_ids[0]
    end = stop_token_ids(tokenizer)[0]
    # three rows, two new tokens each so far: the first after a newline, the second mid-line, the third done
    input_ids = torch.tensor([[word, word, newline], [word, newline, word], [word, word, newline]])
    guard = MinimumLength(tokenizer, start=1, min_new_tokens=[4, 4, 2])
    scores = guard(input_ids, torch.zeros(3, len(tokenizer)))
    blocked = scores == -float("inf")
    assert blocked[0, end] and blocked[0, hash_id]  # after a newline, "#" would open a heading
    assert blocked[1, end] and not blocked[1, hash_id]  # mid-line, "#" is text (`C#`, an issue number)
    assert not blocked[2].any()  # its minimum is reached: it may end
    assert not blocked[0, word] and not blocked[1, word]


def test_a_minimum_makes_a_row_that_would_stop_at_once_write_on(tiny_fp32):
    import copy

    model, tokenizer = tiny_fp32
    prompts = _prompts(tokenizer)[:1]
    decoding = DecodingConfig(max_new_tokens=12, stop_at_heading=False)
    free = generate_ids(model, tokenizer, prompts, decoding)[0]
    at = next(i for i, t in enumerate(free) if i and t not in free[:i])  # an early token, new to the answer
    stopper = copy.deepcopy(tokenizer)
    stopper.eos_token = tokenizer.convert_ids_to_tokens(free[at])  # that token now ends the answer
    assert generate_ids(model, stopper, prompts, decoding) == [free[: at + 1]]
    longer = generate_ids(model, stopper, prompts, decoding, min_new_tokens=[at + 4])[0]
    assert len(longer) >= at + 4 and longer[:at] == free[:at] and free[at] not in longer[: at + 4]


def test_min_section_share_is_checked_and_scales_each_sections_budget():
    from moxi_pipeline.readme.compose import section_minimum

    with pytest.raises(ValueError, match=r"DecodingConfig\.min_section_share .*1\.5"):
        DecodingConfig(min_section_share=1.5)
    assert section_minimum("features", DecodingConfig()) == 0
    assert section_minimum("features", DecodingConfig(min_section_share=0.5)) == 64
    assert section_minimum("about", DecodingConfig(min_section_share=0.5, section_tokens_scale=2)) == 96


def test_a_sentence_written_inside_a_shell_fence_is_moved_out_as_a_paragraph():
    # seen in a generated Usage: "```bash" then "This will print out a list of all files ..." then "```"
    prefix = "## Usage\n\n"
    generated = (prefix + "```bash\nThis will print out a list of all files in your directory, and save them.\n"
                 "npm run build -- --watch\necho done\n```\n\n```python\nSome python text that reads like a sentence.\n```")
    assert clean_section(generated, prefix, cut_by_budget=False) == (
        prefix + "\nThis will print out a list of all files in your directory, and save them.\n\n"
        "```bash\nnpm run build -- --watch\necho done\n```\n\n"
        "```python\nSome python text that reads like a sentence.\n```")
    # commands, comments and short lines stay code
    code = prefix + "```bash\n# Install the tool and run it on a folder\nmake install\ncd tools\n```"
    assert clean_section(code, prefix, cut_by_budget=False) == code


@pytest.mark.parametrize("prefix, written, kept", [
    # seen in generated Abouts: the description said again, whole or cut short
    ("# redoc\n\nReDoc. ", "\nReDoc. \nRedoc.\nIt renders OpenAPI.", "# redoc\n\nReDoc. \nIt renders OpenAPI."),
    ("# svg\n\nTyping SVGs can be used as a bio on your profile. ", "\nTyping SVGs can be used as a bio on you.",
     "# svg\n\nTyping SVGs can be used as a bio on your profile."),
    # a list item said twice goes; the same line in code stays
    ("## Usage\n\n", "1. **Use** it\n```bash\nmake\nmake\n```\n2. **Use** it\n3. Test it", "## Usage\n\n1. **Use** it\n"
     "```bash\nmake\nmake\n```\n3. Test it"),
    # a short line inside a longer one is no repeat: "Fast" under "Fast and small, with no dependencies"
    ("## Features\n\n", "- Fast and small, with no dependencies\n- Fast", "## Features\n\n- Fast and small, with no "
     "dependencies\n- Fast"),
])
def test_a_line_that_says_again_what_the_section_said_goes(prefix, written, kept):
    assert clean_section(prefix + written, prefix, cut_by_budget=False) == kept


def test_a_bare_heading_mark_ending_an_unclosed_block_is_no_code():
    # generation stopped at "\n#" of the next heading the model began inside its code block (seen: a Go Usage
    # block ending "}" then "##"): the block closes after its code; a block of nothing else goes
    assert clean_section(USAGE + "```go\nfunc main() {}\n##", USAGE, cut_by_budget=False) == \
        "## Usage\n\n```go\nfunc main() {}\n```"
    assert clean_section(USAGE + "Run it:\n\n```go\n##\n", USAGE, cut_by_budget=False) == "## Usage\n\nRun it:"
    # a "#" comment with words is code
    assert clean_section(USAGE + "```bash\n# build it", USAGE, cut_by_budget=False) == \
        "## Usage\n\n```bash\n# build it\n```"


def test_a_sentence_saying_one_word_three_times_running_goes():
    # seen without the repetition penalty: "lightweight, lightweight, lightweight, ..." and "React Native Native
    # Native"; the rest of the line stays, a line left with nothing goes, and code keeps its lines
    prefix = "# stronghold\n\nHarden macOS. "
    written = ("It is a small tool. The Stronghold is a lightweight, lightweight, lightweight tool.\n\n"
               "Stronghold is lightweight, lightweight, lightweight\n\n"
               "- Node.js\n- React Native Native Native\n- very fast, fast enough\n\n"
               "```bash\necho go go go\n```")
    assert clean_section(prefix + written, prefix, cut_by_budget=False) == (
        prefix + "It is a small tool.\n\n\n- Node.js\n- very fast, fast enough\n\n```bash\necho go go go\n```")


@pytest.mark.parametrize("written, expected", [
    # a restatement and its contradiction go ("not" is no content word): seen in fine-tuned About sections
    ("It is designed to be fast. It is not designed to be fast.", "It is designed to be fast."),
    # the README's own claim words count though the prose metric's stop words leave them out; numbers do not
    ("It is a Go library. It is also a Go library.", "It is a Go library."),
    ("It is written in Python 2. It is written for Python 3.", "It is written in Python 2."),
    # a sentence that adds a word stays, and so do the lines as written
    ("It runs jobs.\nIt runs jobs in parallel.", "It runs jobs.\nIt runs jobs in parallel."),
    # a sentence across two lines is judged whole; the paragraph that lost one is written on one line
    ("It provides a set of tools to write clean and\nmaintainable code. It provides tools to write clean code.",
     "It provides a set of tools to write clean and maintainable code."),
    # the forced opening counts: a sentence it already says goes
    ("Record your terminal.", ""),
])
def test_a_sentence_restating_an_earlier_one_goes(written, expected):
    prefix = "# tiny\n\nRecord your terminal and share a web player. "
    cleaned = clean_section(prefix + "\n" + written, prefix, cut_by_budget=False)
    assert cleaned == (prefix + "\n" + expected).rstrip()


def test_restatements_leave_list_items_code_and_lead_ins_alone():
    prefix = "## Usage\n\n"
    written = ("Run the server:\n\n```bash\ntiny serve\n```\n\n"
               "Then run the server again:\n\n```bash\ntiny serve --port 9\n```\n\n"
               "- Serves files.\n- Serves files fast.")
    assert clean_section(prefix + written, prefix, cut_by_budget=False) == prefix + written


@pytest.mark.parametrize("line, balanced", [
    ("1. **Zircon is a cross-platform framework.", "1. Zircon is a cross-platform framework."),  # cut before it closed
    ("- **User stats** with stats**", "- **User stats** with stats"),
    ("- **Fast**: no copies.", "- **Fast**: no copies."),
    ("- Run `a ** b` to raise.", "- Run `a ** b` to raise."),  # code is not emphasis
])
def test_an_unclosed_bold_loses_its_stars(line, balanced):
    prefix = "## Features\n\n"
    assert clean_section(prefix + line, prefix, cut_by_budget=False) == prefix + balanced
