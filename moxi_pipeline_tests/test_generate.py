from __future__ import annotations

import json

import pytest

from moxi_pipeline.generate import (
    DecodingConfig,
    base_model_of,
    build_prompt_ids,
    clean_readme,
    generate_readme,
    generate_readmes,
    resolve_adapter,
    stop_token_ids,
)
from moxi_pipeline.instructions import readme_instruction
from moxi_pipeline.records import KeyFile, SampleInput

INPUT = SampleInput(
    file_tree=("pyproject.toml", "src/tiny/__init__.py", "src/tiny/cli.py", "tests/test_cli.py"),
    project_type="python_cli",
    key_files=(KeyFile(path="pyproject.toml", content='[project]\nname = "tiny"\n'),),
)
FAST = DecodingConfig(max_new_tokens=12)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from moxi_pipeline.modeling import load_model, load_tokenizer

    return load_model(tiny_model_dir, "cpu"), load_tokenizer(tiny_model_dir)


@pytest.mark.parametrize(
    "field, value",
    [("max_new_tokens", 0), ("repetition_penalty", 0.0), ("no_repeat_ngram_size", -1), ("temperature", -0.1),
     ("top_p", 0.0), ("top_p", 1.5), ("batch_size", 0)],
)
def test_decoding_config_rejects_out_of_range_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"DecodingConfig\.{field} .*{value!r}"):
        DecodingConfig(**{field: value})


def test_temperature_zero_is_greedy_and_positive_temperature_samples():
    assert DecodingConfig().generate_kwargs() == {
        "max_new_tokens": 384, "repetition_penalty": 1.15, "no_repeat_ngram_size": 6, "do_sample": False,
    }
    sampled = DecodingConfig(temperature=0.7, top_p=0.9).generate_kwargs()
    assert (sampled["do_sample"], sampled["temperature"], sampled["top_p"]) == (True, 0.7, 0.9)


def test_prompt_is_the_chat_template_with_the_instruction_last_and_the_forced_prefix(tiny):
    _, tokenizer = tiny
    ids = build_prompt_ids(tokenizer, "tiny", INPUT)
    text = tokenizer.decode(ids)
    instruction = readme_instruction("tiny", "python_cli")
    # the user turn ends with the instruction; the assistant turn is opened and already holds "# tiny\n"
    assert text.endswith(f"{instruction}<|im_end|>\n<|im_start|>assistant\n# tiny\n")
    assert text.startswith("<|im_start|>system\n")
    unforced = build_prompt_ids(tokenizer, "tiny", INPUT, force_prefix=False)
    assert ids[: len(unforced)] == unforced and len(ids) > len(unforced)


def test_stop_tokens_include_end_of_turn(tiny):
    _, tokenizer = tiny
    assert stop_token_ids(tokenizer) == [tokenizer.convert_tokens_to_ids("<|im_end|>")]


def test_generate_readme_opens_with_the_repo_title_and_is_deterministic(tiny):
    model, tokenizer = tiny
    first = generate_readme(model, tokenizer, "tiny", INPUT, FAST)
    assert first.startswith("# tiny\n")
    assert generate_readme(model, tokenizer, "tiny", INPUT, FAST) == first


def test_batched_generation_keeps_order_and_reports_progress(tiny):
    model, tokenizer = tiny
    items = [("alpha", INPUT), ("beta", INPUT), ("gamma", INPUT)]
    calls = []
    readmes = generate_readmes(
        model, tokenizer, items, DecodingConfig(max_new_tokens=8, batch_size=2), lambda *a: calls.append(a)
    )
    assert [r.split("\n", 1)[0] for r in readmes] == ["# alpha", "# beta", "# gamma"]
    assert calls == [("alpha", 1, 3), ("beta", 2, 3), ("gamma", 3, 3)]


@pytest.mark.parametrize(
    "generated, expected",
    [
        # a plain README passes through, with one trailing newline
        ("# tiny\nA tool.\n\n## Usage\n\nRun it.\n\n\n", "# tiny\nA tool.\n\n## Usage\n\nRun it.\n"),
        # the forced prefix is restored when missing
        ("A tool.", "# tiny\nA tool.\n"),
        # a key-file dump: the first `--- path ---` line and everything after it goes
        ("# tiny\nA tool.\n--- pyproject.toml ---\n[project]\nname = 'tiny'\n", "# tiny\nA tool.\n"),
        # echoed prompt labels go too
        ("# tiny\nA tool.\n\nFile tree:\nsrc/tiny/cli.py\n", "# tiny\nA tool.\n"),
        # an unclosed fence holding code is closed with the same marker
        ("# tiny\n## Install\n```bash\npip install tiny\n", "# tiny\n## Install\n```bash\npip install tiny\n```\n"),
        ("# tiny\n## Install\n~~~~\npip install tiny\n\n", "# tiny\n## Install\n~~~~\npip install tiny\n~~~~\n"),
        # an unclosed empty fence is dropped, and the heading left dangling with it
        ("# tiny\nA tool.\n## Install\n```bash\n\n", "# tiny\nA tool.\n"),
        # a closed fence is left alone; a longer closing fence closes it (CommonMark)
        ("# tiny\n```\nx = 1\n````\nDone.", "# tiny\n```\nx = 1\n````\nDone.\n"),
        # a fence with an info string does not close: "```py" inside is text, the block stays open
        ("# tiny\n```\nx\n```py\n", "# tiny\n```\nx\n```py\n```\n"),
        # a run of 40+ letters is decoding collapse: that line goes (a 39-letter word stays)
        ("# tiny\nA tool.\nUse pip (`npmjimiemlitekomitamirilistykiyevadzhepise`).\nMore.\n", "# tiny\nA tool.\nMore.\n"),
        ("# tiny\nA " + "x" * 39 + " tool.\n", "# tiny\nA " + "x" * 39 + " tool.\n"),
        # a loop: the third copy of a line and everything after it is cut
        ("# tiny\n- fast parsing\n- fast parsing\n- fast parsing\n- more\n", "# tiny\n- fast parsing\n- fast parsing\n"),
        # short lines ("}", "---") repeat in real READMEs and are kept
        ("# tiny\n}\n}\n}\n---\n---\n---\nend\n", "# tiny\n}\n}\n}\n---\n---\n---\nend\n"),
        # a heading with nothing under it at the end is dropped; the title never is
        ("# tiny\nA tool.\n\n## License\n", "# tiny\nA tool.\n"),
        ("# tiny\n", "# tiny\n"),
    ],
)
def test_clean_readme(generated, expected):
    assert clean_readme(generated, "tiny") == expected


def test_resolve_latest_without_a_trained_adapter_says_to_train_first(tmp_path):
    with pytest.raises(ValueError, match=r"no adapter has been trained yet .*LATEST is missing.*train one first"):
        resolve_adapter("latest", tmp_path)


def _adapter(path, **files):
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps(files.pop("adapter_config", {})))
    for name, content in files.items():
        (path / name).write_text(json.dumps(content))
    return path


def test_resolve_latest_reads_the_run_folder_name(tmp_path):
    run = _adapter(tmp_path / "20250101-120000")
    (tmp_path / "LATEST").write_text("20250101-120000\n")
    assert resolve_adapter("latest", tmp_path) == run
    assert resolve_adapter(str(run), tmp_path / "elsewhere") == run


@pytest.mark.parametrize("latest, message", [("", r"LATEST is empty"), ("gone", r"gone is not a PEFT adapter")])
def test_resolve_latest_with_a_bad_latest_file(tmp_path, latest, message):
    (tmp_path / "LATEST").write_text(latest)
    with pytest.raises(ValueError, match=message):
        resolve_adapter("latest", tmp_path)


def test_resolve_a_directory_that_is_not_an_adapter(tmp_path):
    with pytest.raises(ValueError, match=r"adapter '.*plain': .* is not a PEFT adapter directory \(no adapter_config.json\)"):
        resolve_adapter(str(tmp_path / "plain"), tmp_path)


def test_base_model_prefers_training_config_then_adapter_config(tmp_path):
    first, second = (tmp_path / "base1"), (tmp_path / "base2")
    for base in (first, second):
        base.mkdir()
        (base / "config.json").write_text("{}")
    both = _adapter(
        tmp_path / "a", adapter_config={"base_model_name_or_path": str(second)},
        **{"training_config.json": {"base_model_dir": str(first)}},
    )
    peft_only = _adapter(tmp_path / "b", adapter_config={"base_model_name_or_path": str(second)})
    assert (base_model_of(both), base_model_of(peft_only)) == (first, second)


def test_base_model_errors_name_the_file_and_value(tmp_path):
    missing = _adapter(tmp_path / "a", adapter_config={"base_model_name_or_path": "/nowhere/model"})
    with pytest.raises(ValueError, match=r"adapter_config.json: base_model_name_or_path='/nowhere/model' is not a model"):
        base_model_of(missing)
    with pytest.raises(ValueError, match=r"neither training_config.json 'base_model_dir' nor"):
        base_model_of(_adapter(tmp_path / "b"))
