"""The grounding pass: a README keeps only the paths, URLs and commands the repository supports."""

from __future__ import annotations

import pytest

from moxi_pipeline.readme.facts import repo_facts
from moxi_pipeline.readme.evidence import (
    Evidence,
    broken_anchors,
    file_mentions,
    heading_anchors,
    known_paths,
    unknown_paths,
)
from moxi_pipeline.readme.grounding import ground_readme
from moxi_pipeline.records import KeyFile, RepoFacts
from moxi_pipeline_tests.readme.test_facts import record

PYPROJECT = """[project]
name = "fetcher"
description = "Fetch URLs."
dependencies = ["requests"]

[project.scripts]
fetch = "fetcher.cli:main"

[project.urls]
Documentation = "https://fetcher.readthedocs.io/en/latest/"
"""
# a Makefile recipe line is tab-indented; the command in it is still the repository's own
MAKEFILE = "dev:\n\tpip install -e .\n"
REPO = record(
    "fetcher", {"pyproject.toml": PYPROJECT, "Makefile": MAKEFILE},
    ("fetcher/__init__.py", "fetcher/cli.py", "docs/guide.md", "tests/test_cli.py", "LICENSE", ".github/CONTRIBUTING.md"),
    "Python",
)
FACTS = repo_facts(REPO)
EVIDENCE = Evidence.of(FACTS, REPO.file_tree, REPO.key_files)


def test_the_fixture_facts():
    # what the cases below lean on: the install command, the CLI, the dependency, the repository URL
    assert (FACTS.install, FACTS.commands, FACTS.dependencies, FACTS.repo_url, FACTS.package) == (
        ("pip install fetcher",), ("fetch", "make dev"), ("requests",), "https://github.com/octo/fetcher", "fetcher",
    )


@pytest.mark.parametrize(
    "text, grounded, counts",
    [
        # paths: the sentence naming an invented file goes, the one naming a real file stays
        ("The CLI is in `fetcher/cli.py`. The server is in `fetcher/server.py`.", "The CLI is in `fetcher/cli.py`.",
         (1, 0, 0)),
        # a link to an invented file keeps its text; a link to a real one (a dotfolder too) stays whole
        ("Read [the guide](docs/guide.md) and [the API](docs/api.md).", "Read [the guide](docs/guide.md) and the API.",
         (1, 0, 0)),
        ("See [how to contribute](.github/CONTRIBUTING.md).", "See [how to contribute](.github/CONTRIBUTING.md).",
         (0, 0, 0)),
        # URLs: an invented link keeps its text, an invented image goes, a sentence with an invented bare URL goes
        ("![logo](https://example.com/logo.png) Fetch [anything](https://blog.example.com/fetcher).",
         " Fetch anything.", (0, 2, 0)),
        ("Fetch URLs fast. Download it from https://downloads.example.com/fetcher.zip today.", "Fetch URLs fast.",
         (0, 1, 0)),
        # built from facts (the repository and its pages, the registry page) or found in a key file: kept
        ("Report bugs at https://github.com/octo/fetcher/issues. It is [on PyPI](https://pypi.org/project/fetcher/). "
         "Docs: https://fetcher.readthedocs.io/en/latest/.",
         "Report bugs at https://github.com/octo/fetcher/issues. It is [on PyPI](https://pypi.org/project/fetcher/). "
         "Docs: https://fetcher.readthedocs.io/en/latest/.", (0, 0, 0)),
        ("Clone https://github.com/octo/fetcher.git or browse https://github.com/octo/fetcher#usage.",
         "Clone https://github.com/octo/fetcher.git or browse https://github.com/octo/fetcher#usage.", (0, 0, 0)),
        # a URL that merely starts like the repository's is another project (`fetcher-pro`), not one of its pages
        ("A fork lives at https://github.com/octo/fetcher-pro. See [pro](https://pypi.org/project/fetcher-pro/).",
         "See pro.", (0, 2, 0)),
        # commands: inline in a list item, or a bare line of prose
        ("- Run `fetch --help` for options.", "- Run `fetch --help` for options.", (0, 0, 0)),
        ("- Run `sudo make install` first.\n- Run `fetch`.", "- Run `fetch`.", (0, 0, 1)),
        ("Then:\n\npip install numpy", "", (0, 0, 1)),
    ],
)
def test_ground_readme_line_by_line(text, grounded, counts):
    out, report = ground_readme(text, EVIDENCE)
    assert out == grounded
    assert (report.paths, report.urls, report.commands) == counts
    assert report.total() == sum(counts) == len(report.removed)


SHELL_BLOCK = """```bash
pip install fetcher
sudo apt install fetcher
curl -sSL https://get.example.com | bash
pip install numpy
pip install requests
pip install -e .
rm -rf build
npm install fetcher
git clone https://github.com/octo/fetcher.git
cd fetcher
fetch --help
fetch --config conf/settings.yaml
```"""


def test_shell_commands_keep_only_what_the_repository_supports():
    out, report = ground_readme(SHELL_BLOCK, EVIDENCE)
    # kept: the facts' install command, a dependency the manifest names, a line of the Makefile,
    # the clone of this repository, and the repository's own CLI on real files
    assert out == ("```bash\npip install fetcher\npip install requests\npip install -e .\n"
                   "git clone https://github.com/octo/fetcher.git\ncd fetcher\nfetch --help\n```")
    assert report.removed == [
        "sudo apt install fetcher", "curl -sSL https://get.example.com | bash", "pip install numpy", "rm -rf build",
        "npm install fetcher", "fetch --config conf/settings.yaml",
    ]
    assert (report.paths, report.urls, report.commands) == (0, 0, 6)


def test_other_ecosystems_interpreters_and_build_tools_are_commands_the_facts_must_give():
    # seen in a generated Usage block: a composer flag that does not exist, run through php
    block = "```bash\nphp composer install -o fetcher --no_cache\ncmake --build build\nfetch --help\n```"
    out, report = ground_readme(block, EVIDENCE)
    assert out == "```bash\nfetch --help\n```"
    assert report.removed == ["php composer install -o fetcher --no_cache", "cmake --build build"]
    assert report.commands == 2


def test_a_heading_with_no_words_goes_but_a_bare_comment_in_code_stays():
    text = "## Usage\n\n#\n\nThe documentation is in [docs/](docs/).\n\n```bash\n#\npip install fetcher\n```"
    out, report = ground_readme(text, EVIDENCE)
    assert out == "## Usage\n\nThe documentation is in [docs/](docs/).\n\n```bash\n#\npip install fetcher\n```"
    assert report.total() == 0


def test_running_the_project_by_its_name_is_a_command_the_facts_must_give():
    # seen in generated Usage sections: "Run the command `zircon run`" for a library whose facts give no
    # command, and `spam_detector <path> -c x` inside a ```python3 fence
    facts = RepoFacts(name="Spam-Detector", commands=("fetch --help",))
    evidence = Evidence.of(facts, ("spam_detector.py", "classifier.py", "README.md"), ())
    text = ("## Usage\n\n- Run `spam-detector run` to start it.\n- Import `spam_detector` in your code.\n"
            "- Run `fetch --help`.\n- Spam-Detector is a classifier.\n\n"
            "```python3\nspam_detector <path> -c test.txt\nspam_detector.classify(text)\n```\n\n"
            "```bash\nSpamDetector serve --port 80\nfetch --help\n```")
    out, report = ground_readme(text, evidence)
    assert out == ("## Usage\n\n- Import `spam_detector` in your code.\n- Run `fetch --help`.\n"
                   "- Spam-Detector is a classifier.\n\n```python3\nspam_detector.classify(text)\n```\n\n"
                   "```bash\nfetch --help\n```")
    assert report.removed == ["spam-detector run", "spam_detector <path> -c test.txt", "SpamDetector serve --port 80"]
    # the facts give the command: kept; and a real README's own text is not judged this way
    given = Evidence.of(facts.model_copy(update={"commands": ("spam-detector",)}), ("README.md",), ())
    assert ground_readme("Run `spam-detector run`.", given)[1].total() == 0
    lenient = Evidence.of(facts, ("README.md",), (), model_text=False)
    assert ground_readme("Run `spam-detector run`.", lenient)[1].total() == 0


def test_a_code_block_that_loses_every_line_goes_whole():
    out, report = ground_readme("## Setup\n\n```bash\nsudo rm -rf /\n```\n\nDone.", EVIDENCE)
    assert (out, report.commands) == ("## Setup\n\nDone.", 1)


def test_python_code_is_not_judged_as_shell_but_its_urls_are():
    out, report = ground_readme("```python\nimport fetcher\nfetcher.get('https://example.org')\n```", EVIDENCE)
    assert out == "```python\nimport fetcher\n```"
    assert (report.paths, report.urls, report.commands) == (0, 1, 0)


README = """# fetcher

Fetch URLs. The CLI lives in `fetcher/cli.py` and `fetcher/server.py`.

![build](https://ci.example.com/badge.svg)

## Installation

```bash
pip install fetcher
curl https://get.example.com/install.sh | bash
```

## Usage

Run `fetch --help`. See [the guide](docs/guide.md) and [the wiki](https://wiki.example.com/fetcher).

## License

See [LICENSE](LICENSE).
"""


def test_ground_a_whole_readme():
    out, report = ground_readme(README, EVIDENCE)
    assert out == """# fetcher

Fetch URLs.

## Installation

```bash
pip install fetcher
```

## Usage

Run `fetch --help`. See [the guide](docs/guide.md) and the wiki.

## License

See [LICENSE](LICENSE).
"""
    assert (report.paths, report.urls, report.commands) == (1, 2, 1)
    assert report.removed == [
        "fetcher/server.py", "https://ci.example.com/badge.svg", "curl https://get.example.com/install.sh | bash",
        "https://wiki.example.com/fetcher",
    ]


def test_a_grounded_readme_grounds_to_itself():
    once, _ = ground_readme(README, EVIDENCE)
    twice, report = ground_readme(once, EVIDENCE)
    assert (twice, report.total()) == (once, 0)


TREE = ("README.md", "pyproject.toml", "src/tiny/__init__.py", "src/tiny/cli.py", "docs/guide.md", "Makefile",
        ".github/workflows/ci.yml")


@pytest.mark.parametrize(
    "text, mentions, unknown",
    [
        ("Edit `pyproject.toml`, then run `src/tiny/cli.py`.", {"pyproject.toml", "src/tiny/cli.py"}, set()),
        ("See cli.py and setup.py.", {"cli.py", "setup.py"}, {"setup.py"}),  # cli.py is src/tiny/cli.py's tail
        ("Run make (see the Makefile) and read docs/guide.md and docs/api.md.",
         {"Makefile", "docs/guide.md", "docs/api.md"}, {"docs/api.md"}),
        ("The code lives in `src/tiny/` and `lib/`.", {"src/tiny", "lib"}, {"lib"}),  # folders written as code
        ("Use ./src/tiny/cli.py or ./bin/tiny.sh, or ~/config.yaml.",
         {"src/tiny/cli.py", "bin/tiny.sh", "~/config.yaml"}, {"bin/tiny.sh", "~/config.yaml"}),
        ("Config goes in `config/settings` and/or `src`.", {"config/settings"}, {"config/settings"}),
        ("Built on Node.js; edit `App.js`.", {"App.js"}, {"App.js"}),  # a product in prose is no file; code is
        ("CI runs `.github/workflows/ci.yml` and `.github/workflows/release.yml`.",  # a leading dot is a dotfolder
         {".github/workflows/ci.yml", ".github/workflows/release.yml"}, {".github/workflows/release.yml"}),
        ("`./src/tiny/` then src/tiny/cli.py, src/tiny/cli.py and README.md.",
         {"src/tiny", "src/tiny/cli.py", "README.md"}, set()),
        ("Run `tiny --help`.", set(), set()),
        ("Fast.<br/>Small.<br />\n<img src=\"logo.png\"/>", set(), set()),  # markup is not a path
        ("Read and/or write input/output, e.g. with Node.js from https://example.com/a/b.py.", set(), set()),
    ],
)
def test_file_mentions_and_unknown_paths(text, mentions, unknown):
    assert file_mentions(text) == mentions
    assert unknown_paths(text, known_paths(TREE)) == unknown


def test_known_paths_are_every_contiguous_run_of_components():
    assert known_paths(["a/b/c.py"]) == {"a", "b", "c.py", "a/b", "b/c.py", "a/b/c.py"}


@pytest.mark.parametrize("readme", [
    # an indented block that opens with a fence: markdown reads it all as content, the last line included
    "## Usage\n\nSet it up:\n\n    ```python\n      python setup.py run /etc/default/app.conf\n",
    # a fence never closed runs to the end: its last line is content, not a closing fence
    "## Usage\n\n```\nmoxi run\ncat docs/missing.md\n",
])
def test_the_last_line_of_an_indented_or_unclosed_block_is_grounded_too(readme):
    evidence = Evidence.of(RepoFacts(name="app", commands=["moxi run"]), ["README.md", "setup.py", "src/app.py"], [])
    text, report = ground_readme(readme, evidence)
    assert "etc/default" not in text and "docs/missing.md" not in text
    assert len(report.removed) == 1 and ("etc/default" in report.removed[0] or "docs/missing.md" in report.removed[0])


# ---- in-page links -------------------------------------------------------------------------------

ANCHORED = """# fetcher

Fetch URLs. See [Usage](#usage), [the API](#api-overview) and [Getting started](#getting-started).

## Getting Started!

Run `fetch --help`.

## Usage

- [Options](#options)
- [Usage again](#Usage)
- [Package Overview](#package: overview)
"""


def test_an_in_page_link_to_a_missing_heading_keeps_its_text_and_is_counted():
    # GitHub's anchors: "Getting Started!" -> #getting-started; anchors match case-insensitively
    out, report = ground_readme(ANCHORED, EVIDENCE)
    assert "See [Usage](#usage), the API and [Getting started](#getting-started)." in out
    # a list item that was only a broken link is left naming nothing the repository has ("Options", and
    # "Package Overview", whose target has a space: no link at all, the reader sees the brackets): the next
    # pass drops it as an unfounded item
    assert out.endswith("## Usage\n\n- [Usage again](#Usage)\n")
    assert (report.paths, report.urls, report.commands, report.anchors, report.items) == (0, 0, 0, 3, 2)
    assert report.removed == ["#api-overview", "#options", "#package: overview", "- Options", "- Package Overview"]
    assert broken_anchors(out) == []


def test_a_part_of_a_readme_links_to_the_headings_it_is_given():
    out, report = ground_readme("## Usage\n\nInstall first: see [Installation](#installation).", EVIDENCE,
                                anchors={"installation", "usage"})
    assert "[Installation](#installation)" in out and report.anchors == 0


def test_heading_anchors_follow_github():
    text = "# Moxi\n\n## Getting Started!\n\n## Usage\n\n## Usage\n\n## C++ & Go: API\n\n```\n# not a heading\n```\n"
    assert heading_anchors(text) == {"moxi", "getting-started", "usage", "usage-1", "c--go-api"}
    assert broken_anchors("# X\n\n[a](#x) [b](#y) ![c](#z) [d](https://e.com/#y) [e](#x y)\n") == ["#y", "#x y"]


@pytest.mark.parametrize("opening, kept, removed", [
    ("```swift-tools/usage.m -- version : 5,0", "```", ["swift-tools/usage.m"]),
    ("```bash title=install", "```bash", []),
    ("  ~~~objective-c", "  ~~~objective-c", []),
    ("```c++", "```c++", []),
])
def test_an_opening_fence_keeps_only_a_language_name(opening, kept, removed):
    """Seen with sampled drafts (MBR): a fence whose info string named a file the repository lacks."""
    from moxi_pipeline.readme.evidence import Evidence
    from moxi_pipeline.readme.grounding import ground_readme
    from moxi_pipeline.records import RepoFacts

    fence = opening.strip()[:3]
    text = f"# tool\n\n## Usage\n\n{opening}\ntool --help\n{opening[:len(opening) - len(opening.lstrip())]}{fence}\n"
    grounded, report = ground_readme(text, Evidence.of(RepoFacts(name="tool", commands=("tool --help",)), ("tool.py",), ()))
    assert f"\n{kept}\ntool --help\n" in grounded
    assert report.removed == removed and report.paths == len(removed)


def test_a_url_counts_as_found_only_whole_not_as_the_start_of_a_longer_one():
    # seen in a generated Features: "[writeToCSV()](https://github.co/)", passed because "github.co" is the
    # start of every "github.com" in the key files
    evidence = Evidence.of(RepoFacts(name="stats"), ("README.md",),
                           (KeyFile(path="package.json", content='{"homepage": "https://github.com/o/stats/wiki"}'),))
    assert not evidence.url_allowed("https://github.co/") and not evidence.url_allowed("https://github.com/o/st")
    assert evidence.url_allowed("https://github.com/o/stats") and evidence.url_allowed("https://github.com/o/stats/wiki")
    out, report = ground_readme("- [writeToCSV()](https://github.co/)\n- See https://github.com/o/stats/wiki.", evidence)
    # the item left is a name the repository never has: the next pass drops it
    assert (out, report.urls, report.items) == ("- See https://github.com/o/stats/wiki.", 1, 1)


def test_each_command_of_a_pipeline_or_chain_is_judged_and_a_dependency_install_holds_nothing_else():
    # seen in generated Usage sections: a tool piped into `npx rake`, and `pip install -r <made-up folder> |
    # python -m pip install ...` that passed because its last word was a dependency the manifest names
    text = ("## Usage\n\nkarma saba -c conf --profile=true | npx rake\n\n"
            "```bash\ncd fetcher && fetch --help\ncd fetcher && npm run x\npip install -r reqs/data/numpy requests\n"
            "pip install requests\n```")
    out, report = ground_readme(text, EVIDENCE)
    assert out == "## Usage\n\n```bash\ncd fetcher && fetch --help\npip install requests\n```"
    assert report.removed == ["karma saba -c conf --profile=true | npx rake", "cd fetcher && npm run x",
                              "pip install -r reqs/data/numpy requests"]


def test_a_tool_run_inside_a_fence_of_another_language_is_judged_as_a_command():
    # seen in a generated Usage: "```python3" holding `pip install -r <made-up folder> | python -m pip install ...`
    text = ("## Usage\n\n```python3\npip install -r reqs/data/numpy | python -m pip install keras\n"
            "pip install requests\nimport fetcher\ngit = fetcher.Repo()\n```")
    out, report = ground_readme(text, EVIDENCE)
    assert out == "## Usage\n\n```python3\npip install requests\nimport fetcher\ngit = fetcher.Repo()\n```"
    assert report.removed == ["pip install -r reqs/data/numpy | python -m pip install keras"]


def test_a_list_item_left_introducing_nothing_goes_from_model_text():
    # the command under "Install the project:" is none the facts give; the item over the next one is left
    # introducing nothing, and a reader deletes it. A real README's own list (a training answer) keeps it.
    text = ("## Usage\n\n1. Install the project:\n\n   ```bash\n   npm install left-pad-extra\n   ```\n\n"
            "2. Run `fetch --help` to see its options.\n")
    out, report = ground_readme(text, EVIDENCE)
    assert out == "## Usage\n\n2. Run `fetch --help` to see its options.\n"
    assert report.commands == 1
    real, _ = ground_readme(text, Evidence.of(FACTS, REPO.file_tree, REPO.key_files, model_text=False))
    assert real == "## Usage\n\n1. Install the project:\n\n2. Run `fetch --help` to see its options.\n"
    # an item ending in ':' with its own items nested under it introduces them
    nested = "## Usage\n\n- Options:\n  - `--help` prints them\n- Run `fetch --help`.\n"
    assert ground_readme(nested, EVIDENCE)[0] == nested
