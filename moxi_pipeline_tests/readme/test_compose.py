"""`write_readmes`: section-by-section READMEs for repositories on disk, batched, then grounded."""

from __future__ import annotations

import pytest

from moxi_pipeline.collect.local_repos import scan_repository
from moxi_pipeline.readme.compose import write_readmes
from moxi_pipeline.readme.decoding import DecodingConfig
from moxi_pipeline.readme.facts import repo_facts
from moxi_pipeline.readme.evidence import Evidence
from moxi_pipeline.readme.grounding import ground_readme
from moxi_pipeline.readme.outline import render_template

LICENSE = "MIT License\n\nCopyright (c) 2024 Octo Cat\n"


def _renamer(root):
    (root / "renamer").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "renamer"\ndescription = "Rename files in bulk."\nlicense = "MIT"\n\n'
        '[project.scripts]\nrenamer = "renamer.cli:main"\n')
    (root / "renamer" / "__init__.py").write_text('"""Rename files in bulk."""\n')
    (root / "renamer" / "cli.py").write_text("def main():\n    print('renamed')\n\n\nif __name__ == '__main__':\n    main()\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_cli.py").write_text("def test_main():\n    pass\n")
    (root / "LICENSE").write_text(LICENSE)
    return scan_repository(root)


def _counter(root):
    root.mkdir()
    (root / "package.json").write_text('{\n  "name": "counter",\n  "description": "Count words in files.",\n'
                                       '  "bin": {"count": "bin/count.js"},\n  "dependencies": {"express": "^4"}\n}\n')
    (root / "bin").mkdir()
    (root / "bin" / "count.js").write_text("#!/usr/bin/env node\nconsole.log(process.argv.length);\n" * 6)
    return scan_repository(root)


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    base = tmp_path_factory.mktemp("repos")
    return [_renamer(base / "renamer"), _counter(base / "counter")]


@pytest.fixture(scope="module")
def tiny_fp32(tiny_model_dir):
    """fp32, not load_model's bf16: the random model's bf16 logits tie, so a padded batch may flip a greedy
    pick (see test_generate.tiny_fp32); fp32 makes batched and single generation the same computation."""
    from moxi_pipeline.models.base import load_model, load_tokenizer

    return load_model(tiny_model_dir, "cpu").float(), load_tokenizer(tiny_model_dir)


RENAMER_FACTS_SECTIONS = """## Installation

```bash
pip install renamer
```

## Usage

"""


def test_batched_sections_equal_one_prompt_at_a_time(repos, tiny_fp32, monkeypatch):
    model, tokenizer = tiny_fp32
    # clean_section would reduce the random model's text to nothing at all and make the texts trivially
    # equal; without it the README carries every generated token
    monkeypatch.setattr("moxi_pipeline.readme.compose.clean_section", lambda text, prefix, cut_by_budget=True: text)
    # 6 section prompts of different lengths, so the batch is left-padded; sorted by budget, the first
    # batch of 4 holds both About prompts (96 tokens) and two 128-token ones (capped here at 112)
    one = write_readmes(model, tokenizer, repos, DecodingConfig(max_new_tokens=112, batch_size=1))
    batched = write_readmes(model, tokenizer, repos, DecodingConfig(max_new_tokens=112, batch_size=4))
    assert [w.text for w in batched] == [w.text for w in one]
    assert [w.grounding for w in batched] == [w.grounding for w in one]
    assert all(len(w.text) > len(write_readmes(None, None, [repo], DecodingConfig())[0].text) + 200
               for w, repo in zip(one, repos))  # the model's text is really there
    # About keeps its own 96 tokens in a batch that runs to 112, as it would alone
    assert [w.new_tokens for w in batched] == [w.new_tokens for w in one] == [96 + 112 + 112] * 2


def test_write_readmes_on_a_scanned_repository(repos, tiny_fp32):
    model, tokenizer = tiny_fp32
    calls = []
    [renamer] = write_readmes(model, tokenizer, repos[:1], DecodingConfig(max_new_tokens=16), progress=lambda *a: calls.append(a))
    # the three model-written sections, generated in one batch, reported one by one
    assert sorted(label for label, _, _ in calls) == ["renamer about", "renamer features", "renamer usage"]
    assert [(done, total) for _, done, total in calls] == [(1, 3), (2, 3), (3, 3)]
    assert renamer.repo == "renamer"
    assert renamer.facts == repo_facts(repos[0])
    # the title and first sentence are forced; the facts sections are rendered, never generated
    assert renamer.text.startswith("# renamer\n\nRename files in bulk.")
    assert RENAMER_FACTS_SECTIONS in renamer.text
    assert renamer.text.endswith("## License\n\nrenamer is released under the MIT license. "
                                 "See [LICENSE](LICENSE) for the full text.\n")
    # whatever the random model wrote, what is left is grounded
    assert ground_readme(renamer.text, Evidence.of(renamer.facts, repos[0].file_tree, repos[0].key_files))[1].total() == 0


@pytest.mark.parametrize("index", [0, 1])
def test_the_template_floor_is_the_outline_rendered_from_facts(repos, index):
    repo = repos[index]
    [written] = write_readmes(None, None, [repo], DecodingConfig())
    facts = repo_facts(repo)
    template = render_template(facts, repo.project_type)
    grounded, report = ground_readme(template, Evidence.of(facts, repo.file_tree, repo.key_files))
    assert written.text == grounded == template
    assert (written.grounding.total(), written.new_tokens) == (report.total(), 0) == (0, 0)


COUNTER_TEMPLATE = """# counter

Count words in files.

## Built With

- Node.js
- Express

## Installation

```bash
npm install -g counter
```

## Usage

```bash
count
```
"""


def test_the_template_floor_of_a_node_cli(repos):
    # the floor every system must beat: a local folder has no repository URL, so no clone instructions
    assert write_readmes(None, None, repos[1:], DecodingConfig())[0].text == COUNTER_TEMPLATE


class ScriptedModel:
    """Writes a fixed continuation per section (chosen by the forced prefix that ends the prompt), then stops."""

    def __init__(self, tokenizer, scripts: dict[str, str]):
        import torch

        self.device = torch.device("cpu")
        self.tokenizer, self.scripts = tokenizer, scripts

    def generate(self, input_ids, attention_mask, eos_token_id, pad_token_id, **kwargs):
        import torch

        rows = []
        for row in input_ids:
            prompt = self.tokenizer.decode(row)
            section = next(name for name, (prefix, _) in self.scripts.items() if prompt.endswith(prefix))
            rows.append(self.tokenizer(self.scripts[section][1], add_special_tokens=False).input_ids + [eos_token_id[0]])
        width = max(len(r) for r in rows)
        new = torch.tensor([r + [pad_token_id] * (width - len(r)) for r in rows])
        return torch.cat([input_ids, new], dim=1)


def test_what_the_model_invents_is_grounded_away(repos, tiny_model_dir):
    from moxi_pipeline.models.base import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    model = ScriptedModel(tokenizer, {
        "about": ("Rename files in bulk. ", "It reads `renamer/cli.py` and `renamer/magic.py`. "
                                            "Get it from https://renamer.example.com today. It is fast."),
        "features": ("## Features\n\n", "- Renames many files at once.\n- Undo with `sudo renamer --undo`.\n"
                                        "- Dry runs."),
        "usage": ("## Usage\n\n", "Run `renamer --help` to see the options:\n\n```bash\nrenamer --help\n"
                                  "curl https://get.example.com/install.sh | bash\n```"),
    })
    [renamer] = write_readmes(model, tokenizer, repos[:1], DecodingConfig())
    # the model's code block and the facts' own stay two blocks (grounding once merged them into one); "Dry runs."
    # goes too: nothing in the repository says "dry" or "runs"
    assert renamer.text == """# renamer

Rename files in bulk. It is fast.

## Features

- Renames many files at once.

## Installation

```bash
pip install renamer
```

## Usage

Run `renamer --help` to see the options:

```bash
renamer --help
```

```bash
renamer
```

## Contributing

Contributions are welcome.

Run the tests with:

```bash
pytest
```

## License

renamer is released under the MIT license. See [LICENSE](LICENSE) for the full text.
"""
    report = renamer.grounding
    assert (report.paths, report.urls, report.commands, report.items) == (1, 1, 2, 1)
    assert report.removed == ["- Dry runs.", "renamer/magic.py", "https://renamer.example.com", "sudo renamer --undo",
                              "curl https://get.example.com/install.sh | bash"]


def test_mbr_keeps_one_of_its_sampled_drafts(repos, tiny_fp32, monkeypatch):
    """With mbr_candidates=3 every section is one of the three drafts sampled for it, chosen by consensus,
    and the token count is what all drafts cost."""
    from moxi_pipeline.readme import compose

    model, tokenizer = tiny_fp32
    monkeypatch.setattr("moxi_pipeline.readme.compose.clean_section", lambda text, prefix, cut_by_budget=True: text)
    seen = {}
    real_drafts = compose._drafts

    def spy(model, tokenizer, batch, decoding):
        drafts = real_drafts(model, tokenizer, batch, decoding)
        for job, ids in zip(batch, drafts):
            seen[(job.repo_index, job.section)] = [job.prefix + tokenizer.decode(d, skip_special_tokens=True) for d in ids]
        return drafts

    monkeypatch.setattr(compose, "_drafts", spy)
    decoding = DecodingConfig(max_new_tokens=8, mbr_candidates=3, batch_size=6)
    jobs = compose.section_jobs(tokenizer, repos, [repo_facts(r) for r in repos], True)
    out = compose.run_section_jobs(model, tokenizer, jobs, decoding, None)
    assert set(out) == set(seen) and all(len(drafts) == 3 for drafts in seen.values())
    for key, (text, tokens) in out.items():
        assert text in seen[key]
        assert tokens <= 3 * 8


def test_the_length_scale_multiplies_each_sections_budget_within_max_new_tokens(repos, tiny_fp32, monkeypatch):
    from moxi_pipeline.readme import compose

    assert [compose.section_budget(s, DecodingConfig()) for s in ("about", "features", "usage")] == [96, 128, 128]
    assert [compose.section_budget(s, DecodingConfig(section_tokens_scale=2)) for s in ("about", "usage")] == [192, 256]
    assert compose.section_budget("usage", DecodingConfig(section_tokens_scale=4)) == 384  # max_new_tokens caps it
    with pytest.raises(ValueError, match="section_tokens_scale"):
        DecodingConfig(section_tokens_scale=0)
    # generation asks each batch for its own sections' scaled budget
    model, tokenizer = tiny_fp32
    asked = []
    real_generate = compose.generate_ids
    monkeypatch.setattr(compose, "generate_ids",
                        lambda m, t, prompts, decoding, minimum=None, plain=None: asked.append(decoding.max_new_tokens)
                        or real_generate(m, t, prompts, decoding, minimum))
    jobs = compose.section_jobs(tokenizer, repos, [repo_facts(r) for r in repos], True)
    compose.run_section_jobs(model, tokenizer, jobs, DecodingConfig(section_tokens_scale=0.05, batch_size=64), None)
    assert asked == [round(128 * 0.05)]  # one batch: its largest section's budget, scaled


def test_code_written_left_of_a_fence_opened_in_a_list_item_is_laid_out_before_grounding(repos, tiny_fp32, monkeypatch):
    # as a DPO model wrote a Features item: "    ```php" in the item, its code at the margin. To CommonMark the
    # margin line ends the item and the fence with it: grounding saw an empty block, dropped it, and the lone
    # closing fence then opened a block that swallowed the Installation heading below
    from moxi_pipeline.readme import compose, markdown

    model, tokenizer = tiny_fp32
    features = ("1. **Rename**: rename many files.\n2. **Filters**: choose files. For example:\n"
                "    ```python\nfiles = rename_all()\n```\n   This renames every file in the list.")

    def fake_generate(m, t, prompts, decoding, minimum=None, plain=None):  # features where the prompt ends so
        texts = [features if t.decode(ids).endswith("## Features\n\n") else "Renames files." for ids in prompts]
        return [t(text, add_special_tokens=False).input_ids for text in texts]

    monkeypatch.setattr(compose, "generate_ids", fake_generate)
    text = write_readmes(model, tokenizer, repos[:1], DecodingConfig(batch_size=8))[0].text
    assert "    ```python\n    files = rename_all()\n    ```" in text
    for block in markdown.code_blocks(text):
        assert "## Installation" not in "\n".join(text.split("\n")[block.start : block.end])
    assert "## Installation\n\n```bash\npip install renamer\n```" in text
