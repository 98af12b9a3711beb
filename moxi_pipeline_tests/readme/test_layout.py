"""Markdown that renders: `markdown.layout` after the grounding pass, and the fence handling before it.

The texts are shaped like what the evaluation found in generated READMEs (dev repositories, both models):
lists that lost an item to grounding, a description bullet under a numbered feature, a code block written
between two steps, and a model's code block right before the facts' own block."""

from __future__ import annotations

import re

import pytest

from moxi_pipeline.evaluation.metrics import lint_findings, unclosed_fences
from moxi_pipeline.readme.cleaning import clean_section
from moxi_pipeline.readme.evidence import Evidence
from moxi_pipeline.readme.grounding import ground_readme
from moxi_pipeline.readme.markdown import fence_pairs, layout
from moxi_pipeline.records import RepoFacts

FEATURES = """# tool

## Features

1. **Service aliasing**:
- Lets one service stand in for another.
3. **Composite services**:
- Combines several providers.
"""

STEPS = """## Usage

Steps:
1. Install the library:
```bash
npm install tool
```
2. Run it:
```bash
npm run build
```
Then read the output.
*   one
*   two
    - nested by four
"""


# seen in a generated Features (zircon): each item's text runs on in a paragraph at the margin
PARAGRAPHS = """## Features

1. **A library for building

*Java applications*. It runs
anywhere.

3. **Kotlin first.** This means

the same tools.

## Usage
"""


# seen in a generated Features (stronghold, the base model): a nested list switches from "-" to "*"
MIXED_BULLETS = """## Features

1. Built-in modules:
   * `stronghold`
   * Other
2. Built-in modules and more
   - `stronghold.py`
   * `constants.py`

## Usage
"""


def _words(text: str) -> list[str]:
    return [re.sub(r"^[-*+]$", "-", re.sub(r"^\d+([.)])$", r"N\1", word)) for word in text.split()]


@pytest.mark.parametrize("text", [FEATURES, STEPS, PARAGRAPHS, MIXED_BULLETS])
def test_layout_clears_the_lint_findings_and_changes_no_word(text):
    before, after = lint_findings(text), lint_findings(layout(text))
    assert sum(before.values()) > 0
    assert sum(after.values()) == 0, after
    assert _words(layout(text)) == _words(text)
    assert layout(layout(text)) == layout(text)


def test_a_numbered_list_runs_on_and_its_description_bullets_go_under_each_item():
    assert layout(FEATURES) == """# tool

## Features

1. **Service aliasing**:
   - Lets one service stand in for another.
2. **Composite services**:
   - Combines several providers.
"""


def test_a_code_block_between_two_steps_moves_into_the_first_and_fences_get_blank_lines():
    out = layout(STEPS)
    assert "Steps:\n\n1. Install the library:\n\n   ```bash\n   npm install tool\n   ```\n\n2. Run it:" in out
    # after the last step the block stays at the margin: nothing after it continues the list
    assert "2. Run it:\n\n```bash\nnpm run build\n```\n\nThen read the output.\n\n* one\n* two\n  - nested by four" in out


def test_a_paragraph_at_the_margin_goes_into_the_item_it_continues():
    assert layout(PARAGRAPHS) == """## Features

1. **A library for building

   *Java applications*. It runs
   anywhere.

2. **Kotlin first.** This means

   the same tools.

## Usage
"""
    # a paragraph after the last item that opens a sentence of its own ends the list
    assert layout("- one\n- two\n\nThen read the output.\n") == "- one\n- two\n\nThen read the output.\n"


def test_code_inside_a_fence_is_never_touched():
    text = "Run:\n\n```text\n1. not a list\n3. still not\n-  nor this\n```\n"
    assert layout(text) == text


def test_a_closing_fence_then_an_opening_one_are_two_blocks_not_one_empty_block():
    lines = ["```bash", "npm install tool", "```", "", "```bash", "npm run build", "```"]
    assert fence_pairs(lines) == [(0, 2), (4, 6)]
    assert fence_pairs(["````md", "```", "````"]) == [(0, 2)]  # a shorter fence inside a longer one is content
    assert fence_pairs(["```", "code"]) == [(0, None)]
    facts = RepoFacts(name="tool", package="tool", ecosystem="node", install=("npm install tool",),
                      commands=("npm run build",))
    text = "## Usage\n\n" + "\n".join(lines) + "\n"
    grounded, report = ground_readme(text, Evidence.of(facts, ("package.json",), ()))
    assert grounded == text and report.total() == 0  # the grounding pass's tidy kept both blocks whole


def test_a_fence_the_model_left_open_inside_a_list_item_closes_inside_it():
    raw = "## Usage\n\n1. Add a component:\n    ```javascript\n    const app = choo()\n"
    section = clean_section(raw, "## Usage\n\n", cut_by_budget=True)
    assert section.endswith("    const app = choo()\n    ```")
    readme = section + "\n\n```bash\nnpm start\n```\n"
    assert unclosed_fences(readme) == 0
    assert "npm start" in [block for block in readme.split("```") if "npm start" in block][0]


def test_a_fence_reopened_with_a_language_closes_the_open_block_where_the_prose_came_back():
    # as a DPO model wrote choo's Usage: the javascript block never closed, so "3. Use it:" and the jsx fence
    # were code to CommonMark and the block ran to the end of the README
    raw = ("## Usage\n\n1. Install\n2. Create a component:\n   ```javascript\n    // create it\n\n3. Use it:\n"
           "   ```jsx\n    <div/>\n   ```\n")
    assert unclosed_fences(raw) == 1
    section = clean_section(raw, "## Usage\n\n", cut_by_budget=False)
    assert section == ("## Usage\n\n1. Install\n2. Create a component:\n   ```javascript\n    // create it\n   ```\n\n"
                       "3. Use it:\n   ```jsx\n    <div/>\n   ```")
    assert unclosed_fences(section) == 0 and sum(lint_findings(layout(section)).values()) == 0
    glued = clean_section("## Usage\n\n```python\nimport x\n```bash\npip install x\n```\n", "## Usage\n\n", False)
    assert glued == "## Usage\n\n```python\nimport x\n```\n\n```bash\npip install x\n```"


def test_a_closing_fence_indented_past_three_spaces_moves_to_its_openers_indent():
    # as the DPO model closed a C# example: to CommonMark "       ```" is code, so the block ran on over the
    # Contributing heading to the facts' own bash block
    from moxi_pipeline.readme.markdown import code_blocks

    raw = "## Usage\n\n```csharp\n    using System;\n\n       ```\n"
    facts_part = "\n## Contributing\n\n```bash\ndotnet test\n```\n"
    before = raw + facts_part
    assert fence_pairs(before.split("\n")) == [(2, 11)] and len(code_blocks(before)) == 1
    section = clean_section(raw, "## Usage\n\n", cut_by_budget=False)
    assert section == "## Usage\n\n```csharp\n    using System;\n\n```"
    after = section + "\n" + facts_part
    assert fence_pairs(after.split("\n")) == [(2, 5), (9, 11)] and len(code_blocks(after)) == 2
    # inside a list item the opener's own indent counts: this closer is the item's
    assert fence_pairs(["1. Run:", "    ```bash", "    make", "      ```"]) == [(1, 3)]


def test_code_written_left_of_its_indented_fence_stays_in_the_block():
    text = "1. Install it.\n2. Run it:\n\n    ```\n    <path>\n  ...</path>\n    ```\n"
    assert unclosed_fences(text) == 1  # the line left of the fence ends the item, and the block with it
    out = layout(text)
    assert out == "1. Install it.\n2. Run it:\n\n    ```\n    <path>\n    ...</path>\n    ```\n"
    assert unclosed_fences(out) == 0 and _words(out) == _words(text)


def test_a_numbered_list_that_lost_its_first_item_still_opens_at_one():
    # the grounding pass took "1. Install the project:" (its code was invented): the list opened at 2
    text = "## Usage\n\n2. Run the app:\n\n3. Open the page.\n"
    assert layout(text) == "## Usage\n\n1. Run the app:\n\n2. Open the page.\n"
    assert sum(lint_findings(text).values()) > 0
    assert sum(lint_findings(layout(text)).values()) == 0


def test_a_code_block_at_the_margin_followed_by_the_items_indented_note_stays_in_the_item():
    """Seen in a fine-tuned Usage (dvc): the fence at the margin under step 1, then a line indented under the step,
    then step 2. Left as written, the fence ends the list and step 2 opens a new one at 2 (MD029)."""
    note = "   This will install the dvc command line tool."
    text = (f"## Usage\n\n1. Install dvc:\n\n```bash\npip install dvc\n```\n\n{note}\n\n"
            "2. Run the command:\n\n   ```bash\n   dvc\n   ```\n")
    assert lint_findings(text)["MD029"] == 1
    laid = layout(text)
    assert f"1. Install dvc:\n\n   ```bash\n   pip install dvc\n   ```\n\n{note}" in laid
    assert "\n2. Run the command:" in laid
    assert not any((lint_findings(laid) or {"?": 1}).values())
    assert laid.split() == text.split()  # no word changed, none moved


@pytest.mark.parametrize("opener, tidy", [
    ("```bash#", "```bash"), ("```python:", "```python"), ("```sh#", "```sh"), ("```js.", "```js"),
    ("```c#", "```c#"), ("```f#", "```f#"), ("```c++", "```c++"), ("```objective-c", "```objective-c"),
    ("```console $", "```console $"),
])
def test_a_fence_language_loses_a_stray_tail_and_keeps_its_own_symbols(opener, tidy):
    prefix = "## Usage\n\n"
    cleaned = clean_section(f"{prefix}Run it:\n\n{opener}\ndvc\n```\n", prefix, cut_by_budget=False)
    assert cleaned == f"{prefix}Run it:\n\n{tidy}\ndvc\n```"


def test_the_items_of_one_level_of_a_list_share_the_first_items_bullet():
    text = layout(MIXED_BULLETS)
    assert "   - `stronghold.py`\n   - `constants.py`" in text and "   * `stronghold`\n   * Other" in text
