"""Repeated, templated and unfounded list items: which the grounding pass drops from what a model wrote, and which
it keeps."""

from __future__ import annotations

import pytest

from moxi_pipeline.readme.evidence import Evidence
from moxi_pipeline.readme.grounding import ground_readme
from moxi_pipeline.readme.lists import filler_items, invented_code_items
from moxi_pipeline.records import KeyFile, RepoFacts

FACTS = RepoFacts(name="geodb", language="Python")
KEY_FILES = (KeyFile(path="setup.cfg", content="[options]\ninstall_requires = psycopg2  # PostgreSQL driver\n"),
             KeyFile(path="geodb/__init__.py", content='"""Fast lookups, with support for service registration and its '
                     'customization, async resolution, and a filter that detects spam mails with attachments. '
                     'Install the driver first."""\n'))
TREE = ("README.md", "geodb/__init__.py", "geodb/filters.py", "docs/country.md")
EVIDENCE = Evidence.of(FACTS, TREE, KEY_FILES)


def _kept(text: str) -> list[str]:
    lines = text.split("\n")
    drop = filler_items(text, EVIDENCE.mentions)
    return [line for index, line in enumerate(lines) if index not in drop]


def test_a_near_repeat_of_an_earlier_item_goes_and_distinct_items_stay():
    text = ("## Features\n\n- Service Registration with Customization\n- Service registration with customisation\n"
            "- Detect spam mails with attachments\n- Detect spam mailings with attachments\n- Async resolution")
    assert _kept(text) == ["## Features", "", "- Service Registration with Customization",
                           "- Detect spam mails with attachments", "- Async resolution"]


def test_an_item_naming_the_same_feature_in_bold_as_an_earlier_one_goes():
    # seen in fine-tuned Features lists: "**DOM**" eight times over different descriptions (choo), and
    # "**Imprecable**", "**Imprecably**", "**Imprecabable**" (Human-Activity-Recognition)
    text = ("## Features\n\n1. **Filters**: detect spam mails.\n2. **Filters**: support for service registration.\n"
            "3. **Async**: async resolution.\n4. **filters:** fast lookups.\n5. **Filter**: spam.\n"
            "6. **Lookups**: fast.\n"
            "   - **Async**: nested, another list level")
    assert _kept(text) == ["## Features", "", "1. **Filters**: detect spam mails.", "3. **Async**: async resolution.",
                           "6. **Lookups**: fast.", "   - **Async**: nested, another list level"]


def test_a_template_run_keeps_only_the_items_the_repository_names():
    # "postgresql" is in setup.cfg and "country" in the tree; MySQL, Joomla and Maldives are nowhere
    text = ("## Features\n\n- Support for PostgreSQL\n- Support for MySQL\n- Support for Joomla\n\n"
            "## Filters\n\n1. Filtering based on country\n2. Filtering based in Maldives\n3. Filtering based on city\n")
    assert _kept(text) == ["## Features", "", "- Support for PostgreSQL", "", "## Filters", "",
                           "1. Filtering based on country", ""]


@pytest.mark.parametrize("text", [
    "- Support for MySQL\n- Support for Joomla\n- Fast",  # two items sharing an opening are no template
    # items with code or links are the other rules' to judge
    "- `geodb load`\n- `geodb loads`\n- [Support for MySQL](docs/country.md)\n- [Support for Oracle](#x)\n",
    # an item a lazy line goes on is one paragraph with it
    "- Detect spam mails with attachments\n- Detect spam mailings with attachments\nand more.\n",
    # lists under two headings are judged apart
    "## Linux\n\n- Install the driver first\n\n## macOS\n\n- Install the drivers first\n",
    # code is not judged
    "```\n- Support for MySQL\n- Support for Joomla\n- Support for Drupal\n```",
])
def test_texts_left_whole(text):
    assert _kept(text) == text.split("\n")


def test_an_item_with_lines_under_it_keeps_them():
    nested = "- Support for MySQL\n  - through its driver\n- Support for Joomla\n- Support for Drupal\n"
    assert _kept(nested)[:2] == ["- Support for MySQL", "  - through its driver"]


def test_an_item_none_of_whose_words_the_repository_has_goes():
    # "fast", "lookups" and "country" are in the repository; the rest is what READMEs usually say, or nothing
    text = ("## Features\n\n- Free to use\n- Compatible with modern browsers\n- Fast lookups\n\n"
            "## Fields\n\n- Username\n- Gender\n- Country\n")
    assert _kept(text) == ["## Features", "", "- Fast lookups", "", "## Fields", "", "- Country", ""]


def test_the_grounding_pass_drops_and_counts_them_in_model_text_only():
    text = "## Features\n\n- Support for MySQL\n- Support for Joomla\n- Support for PostgreSQL\n- Fast lookups\n"
    out, report = ground_readme(text, EVIDENCE)
    assert out == "## Features\n\n- Support for PostgreSQL\n- Fast lookups\n"
    assert (report.items, report.total(), report.removed) == (2, 2, ["- Support for MySQL", "- Support for Joomla"])
    # a real README's own list (a training answer) is its author's: kept whole
    real = Evidence.of(FACTS, TREE, KEY_FILES, model_text=False)
    kept, untouched = ground_readme(text, real)
    assert (kept, untouched.total()) == (text, 0)


def test_the_names_the_facts_give_count_as_the_repositorys_words():
    # Built With lists the language, ecosystem and frameworks, which a manifest need not spell out
    facts = RepoFacts(name="geodb", language="Python", ecosystem="python", frameworks=("Click",))
    evidence = Evidence.of(facts, TREE, ())
    text = "## Built With\n\n- Python\n- Click\n- Django\n"
    assert sorted(filler_items(text, evidence.mentions)) == [4]  # "- Django"


def test_the_projects_own_names_are_no_support():
    # for Spam-Detector "spam" and "detector" say nothing: each item is judged by its other words, and an item that
    # only names the project goes
    facts = RepoFacts(name="Spam-Detector", language="Python")
    evidence = Evidence.of(facts, ("spam_detector.py", "data/emails.csv"), (KeyFile(
        path="spam_detector.py", content='"""Classify emails with a decision tree."""\n'),))
    text = ("## Features\n\n- Detect spam emails\n- Spam tagging\n- Spam cleanup\n- Spam Detector\n"
            "- Spam-Detector 2.x\n- Decision tree classifier\n")
    assert evidence.names == {"spam", "detector", "spamdetector"}
    drop = filler_items(text, evidence.mentions, evidence.names)
    assert sorted(drop) == [3, 4, 5, 6]
    # without the names, every item has a word the repository has
    assert filler_items(text, evidence.mentions) == set()
    # the grounding pass passes them
    assert ground_readme(text, evidence)[0] == "## Features\n\n- Detect spam emails\n- Decision tree classifier\n"


def test_an_item_opening_with_a_name_in_code_the_repository_lacks_goes():
    # seen in the base model's Features (stronghold, vhs): names made up around the project's own
    text = ("## Features\n\n1. Built-in modules:\n   - `geodb`\n   - `tronk`\n   - `geodb/filters.py`: the filters\n"
            "   - `Vhd` - Testing the `Vhd` library\n   - `GEODB.dll`\n   - Fast `lookups`\n\n"
            "```\n- `tronk`\n```\n- `tomcat`\n  with a line under it\n")
    lines = text.split("\n")
    dropped = [lines[index] for index in sorted(invented_code_items(text, EVIDENCE.has_text))]
    assert dropped == ["   - `tronk`", "   - `Vhd` - Testing the `Vhd` library", "   - `GEODB.dll`"]
    out, report = ground_readme(text, EVIDENCE)
    assert "`tronk`\n```" in out and "`Vhd`" not in out and "- `geodb/filters.py`: the filters" in out
    assert report.removed[:3] == ["- `tronk`", "- `Vhd` - Testing the `Vhd` library", "- `GEODB.dll`"]
