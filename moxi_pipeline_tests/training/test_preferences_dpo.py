"""preference_pairs and dpo_adapter on the tiny model: resumable pairs, the ROUGE-L rule, DPO moves the adapter."""

import json

import pytest

from moxi_pipeline.readme.decoding import DecodingConfig
from moxi_pipeline.records import SampleInput, SftSample
from moxi_pipeline.training.preferences import (
    ANSWER_FORMAT,
    PAIR_REPETITION_PENALTY,
    SKIP_CLOSE,
    SKIP_EMPTY,
    PreferenceConfig,
    build_preference_pairs,
    prompt_key,
    read_pairs,
    write_pairs,
)
from moxi_pipeline_tests.export.test_export import save_random_adapter

CONFIG = PreferenceConfig(decoding=DecodingConfig(max_new_tokens=12, temperature=0.7, batch_size=2), max_rouge_l=0.5)


def _samples(n=5):
    return [SftSample(instruction=f"Write the Usage section of tool{i}.", content=f"## Usage\n\nRun `tool{i} --help` to see options.",
                      repo_url=f"https://github.com/o/tool{i}", repo=f"tool{i}", kind="section", split="train", section="usage",
                      input=SampleInput(file_tree=(f"tool{i}/cli.py",), project_type="python_package"))
            for i in range(n)] + [SftSample(instruction="Write the Usage section.", content="held out", repo_url="t",
                                            repo="t", kind="section", split="test", section="usage",
                                            input=SampleInput(file_tree=("a.py",), project_type="python_package"))]


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model_dir):
    from moxi_pipeline.models.base import load_model, load_tokenizer

    return load_model(tiny_model_dir, "cpu"), load_tokenizer(tiny_model_dir)


def test_pairs_use_train_prompts_and_resume_from_the_progress_file(model_and_tokenizer, tmp_path):
    model, tokenizer = model_and_tokenizer
    samples = _samples()
    progress = tmp_path / "progress.jsonl"
    # a killed run left answers for the first two prompts: they are not generated again
    progress.write_text("".join(json.dumps({"key": prompt_key(s), "rejected": "stale answer", "format": ANSWER_FORMAT})
                                + "\n" for s in samples[:2]))
    result = build_preference_pairs(model, tokenizer, samples, CONFIG, progress)
    assert result.generated == 3
    assert len(progress.read_text().splitlines()) == 5
    assert {pair.repo_url for pair in result.pairs} <= {s.repo_url for s in samples[:5]}
    assert [p.rejected for p in result.pairs[:2]] == ["stale answer", "stale answer"]
    assert all(pair.chosen.startswith("## Usage") and pair.rouge_l < 0.5 for pair in result.pairs)
    again = build_preference_pairs(model, tokenizer, samples, CONFIG, progress)
    assert again.generated == 0 and again.pairs == result.pairs
    write_pairs(result.pairs, tmp_path / "pairs.jsonl")
    assert read_pairs(tmp_path / "pairs.jsonl") == result.pairs


def test_a_rejected_answer_close_to_the_real_one_is_skipped_and_counted(model_and_tokenizer, tmp_path):
    model, tokenizer = model_and_tokenizer
    samples = _samples(4)
    progress = tmp_path / "progress.jsonl"
    copies = [{"key": prompt_key(s), "rejected": s.content, "format": ANSWER_FORMAT} for s in samples[:1]]
    others = [{"key": prompt_key(s), "rejected": "something else entirely", "format": ANSWER_FORMAT} for s in samples[1:4]]
    progress.write_text("".join(json.dumps(row) + "\n" for row in copies + others))
    result = build_preference_pairs(model, tokenizer, samples, CONFIG, progress)
    assert result.skipped == {SKIP_CLOSE: 1} and len(result.pairs) == 3
    with pytest.raises(ValueError, match=r"1 of 4 prompts gave no pair, more than max_skipped_share=0.2"):
        build_preference_pairs(model, tokenizer, samples, PreferenceConfig(max_skipped_share=0.2), progress)


def test_the_rejected_answer_is_generated_after_the_real_heading_and_a_bare_heading_is_empty(
        model_and_tokenizer, tmp_path, monkeypatch):
    """The model continues from the section's heading, as generation forces it. Left to open the answer itself, the
    SFT model's first `#` met the prompt's last newline, `\\n#` stopped decoding, and every rejected answer was `#`."""
    from moxi_pipeline.training import preferences

    model, tokenizer = model_and_tokenizer
    samples = _samples(4)
    seen = []
    answers = iter(["Run the tool and read its help.", "", "Call tool2 from a script.", "Pipe a file into tool3."])

    def generate(model, tokenizer, prompts, decoding):
        seen.extend(tokenizer.decode(ids) for ids in prompts)
        return [tokenizer(next(answers), add_special_tokens=False)["input_ids"] for _ in prompts]

    monkeypatch.setattr(preferences, "generate_ids", generate)
    progress = tmp_path / "progress.jsonl"
    # a row of the old format (the lone `#` answers) is generated again, not reused
    progress.write_text(json.dumps({"key": prompt_key(samples[0]), "rejected": "#"}) + "\n")
    result = build_preference_pairs(model, tokenizer, samples, CONFIG, progress)
    assert result.generated == 4 and len(seen) == 4
    assert all(prompt.endswith("assistant\n## Usage\n\n") for prompt in seen)
    assert [p.rejected for p in result.pairs] == ["## Usage\n\nRun the tool and read its help.",
                                                   "## Usage\n\nCall tool2 from a script.",
                                                   "## Usage\n\nPipe a file into tool3."]
    assert result.skipped == {SKIP_EMPTY: 1}
    assert all(json.loads(line).get("format") == ANSWER_FORMAT for line in progress.read_text().splitlines()[1:])


def test_dpo_moves_the_sft_adapter_and_keeps_base_and_reference(tiny_model_dir, tmp_path, model_and_tokenizer):
    from safetensors.torch import load_file

    from moxi_pipeline.models.writer import base_model_of
    from moxi_pipeline.training.dpo import load_dpo_config, train_dpo

    model, tokenizer = model_and_tokenizer
    sft = save_random_adapter(tiny_model_dir, tmp_path / "sft")
    pairs = build_preference_pairs(model, tokenizer, _samples(4), CONFIG, tmp_path / "progress.jsonl").pairs
    config = load_dpo_config("demo", max_steps=2, max_length=256, learning_rate=1e-2)
    result = train_dpo(tiny_model_dir, sft, pairs, config, tmp_path / "dpo")
    assert result.steps == 2 and {"loss", "rewards/margins", "rewards/accuracies"} <= set(result.history[0])
    before, after = load_file(sft / "adapter_model.safetensors"), load_file(result.adapter_dir / "adapter_model.safetensors")
    assert before.keys() == after.keys()  # the "default" adapter only; the frozen "ref" copy is not saved
    assert any(not after[k].equal(before[k]) for k in before)
    assert base_model_of(result.adapter_dir).resolve() == tiny_model_dir.resolve()


class _Killed(RuntimeError):
    pass


def _kill_after_saving(step):
    from transformers import TrainerCallback

    class Kill(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # after the checkpoint of `step` is on disk
            if state.global_step == step:
                raise _Killed(f"killed after step {step}")

    return Kill()


def test_a_killed_dpo_run_resumes_from_its_checkpoint_and_a_changed_one_starts_over(tiny_model_dir, tmp_path):
    from moxi_pipeline.training.dpo import load_dpo_config, train_dpo
    from moxi_pipeline.training.preferences import PreferencePair
    from moxi_pipeline.training.train import checkpoint_dir_for

    sft = save_random_adapter(tiny_model_dir, tmp_path / "sft")
    pairs = [PreferencePair(f"k{i}", s.repo_url, s.section, [{"role": "user", "content": s.instruction}], s.content,
                            f"Made up {i}.", 0.1) for i, s in enumerate(_samples(4)[:4])]
    config = load_dpo_config("demo", max_steps=4, max_length=128, save_steps=2)
    out = tmp_path / "dpo"
    with pytest.raises(_Killed):
        train_dpo(tiny_model_dir, sft, pairs, config, out, callbacks=[_kill_after_saving(2)])
    checkpoints = checkpoint_dir_for(out)
    assert (checkpoints / "checkpoint-2").is_dir() and not out.exists()
    result = train_dpo(tiny_model_dir, sft, pairs, config, out)
    assert result.resumed_from_step == 2 and result.steps == 4
    # the whole curve: steps 1-2 come back with the checkpoint's trainer state
    assert [row["step"] for row in result.history] == [1, 2, 3, 4]
    assert (out / "adapter_model.safetensors").is_file() and not checkpoints.exists()
    # killed again, then re-run with other pairs: the checkpoint is another run's, cleared, not resumed
    with pytest.raises(_Killed):
        train_dpo(tiny_model_dir, sft, pairs, config, tmp_path / "dpo2", callbacks=[_kill_after_saving(2)])
    other = train_dpo(tiny_model_dir, sft, pairs[::-1], config, tmp_path / "dpo2")
    assert other.resumed_from_step == 0 and other.steps == 4


def test_dpo_config_names_a_bad_field_and_dpo_needs_pairs(tiny_model_dir, tmp_path):
    from moxi_pipeline.training.dpo import load_dpo_config, train_dpo

    with pytest.raises(ValueError, match=r"dpo profile 'demo': beta=0: Input should be greater than 0"):
        load_dpo_config("demo", beta=0)
    with pytest.raises(ValueError, match=r"dpo profile 'nope' does not exist; available: cpu, demo, gpu-3b"):
        load_dpo_config("nope")
    with pytest.raises(ValueError, match="DPO needs preference pairs"):
        train_dpo(tiny_model_dir, tmp_path, [], load_dpo_config("demo"), tmp_path / "dpo")


def test_grounding_counts_what_the_grounding_pass_would_cut_from_rejected_answers():
    from moxi_pipeline.training.preferences import (
        PreferencePair,
        grounding_counts,
        prompt_key,
    )

    samples = _samples(2)
    # an invented path and an invented URL; nothing to cut
    rejected = ["See `tools/missing_script.py` for the entry point.\n\nDocs at https://example.com/tool0/docs.\n",
                "Run it."]
    pairs = [PreferencePair(prompt_key(s), s.repo_url, s.section, [], s.content, text, 0.1)
             for s, text in zip(samples, rejected)]
    counts = grounding_counts(pairs, samples)
    assert counts["answers_with_any"] == 1
    assert counts["answers_with"] == {"paths": 1, "urls": 1, "commands": 0, "anchors": 0, "items": 0}
    assert counts["removed"] == {"paths": 1, "urls": 1, "commands": 0, "anchors": 0, "items": 0}
    with pytest.raises(ValueError, match="no SFT sample has its prompt"):
        grounding_counts(pairs, samples[:1])


@pytest.mark.parametrize(("train_profile", "dpo_profile"), [("demo", "demo"), ("cpu", "cpu"), ("gpu-3b", "gpu-3b"),
                                                            ("gpu-7b", "demo")])
def test_the_dpo_profile_follows_the_train_profile_where_one_exists(train_profile, dpo_profile):
    from moxi_pipeline.training.dpo import default_dpo_profile

    assert default_dpo_profile(train_profile) == dpo_profile
    from moxi_pipeline.training.dpo import load_dpo_config

    load_dpo_config(dpo_profile)  # every profile file loads and validates


@pytest.mark.parametrize("profile", ["demo", "cpu", "gpu-3b"])
def test_rejected_answers_keep_the_repetition_penalty_they_were_measured_with(profile):
    # generation's default changed (1.15 -> 1.0, README writing); the pairs every DPO adapter was measured on were
    # sampled at 1.15, and every way to build pairs keeps that, so the DPO recipe stays the one measured
    from moxi_pipeline.training.dpo import load_dpo_config

    assert DecodingConfig().repetition_penalty == 1.0
    assert PAIR_REPETITION_PENALTY == 1.15
    assert PreferenceConfig().decoding.repetition_penalty == PAIR_REPETITION_PENALTY
    assert load_dpo_config(profile).preference_config().decoding.repetition_penalty == PAIR_REPETITION_PENALTY


def test_a_bad_dpo_profile_setting_names_the_variable():
    from moxi_pipeline.settings import load_settings

    assert load_settings({"MOXI_DPO_PROFILE": "cpu"}).dpo_profile == "cpu"
    with pytest.raises(ValueError, match="MOXI_DPO_PROFILE.*gpu-9b"):
        load_settings({"MOXI_DPO_PROFILE": "gpu-9b"})


def test_the_fused_head_scores_only_labelled_positions_on_the_cpu_with_the_same_log_probs(tiny_model_dir, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer import utils

    from moxi_pipeline.training.backends import fused_head_on_labelled_positions

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32).eval()
    utils.add_fused_lm_head(model)
    scored = []
    apply = utils._ChunkedLogProbFunction.apply
    monkeypatch.setattr(utils._ChunkedLogProbFunction, "apply", lambda hidden, *rest: scored.append(hidden.shape[0])
                        or apply(hidden, *rest))
    input_ids = torch.randint(3, 100, (2, 12))
    labels = input_ids.masked_fill(torch.arange(12) < 9, -100)  # a 9-token prompt, a 3-token answer
    with torch.no_grad():
        every = model(input_ids=input_ids, labels=labels, fused_lm_head=True).log_probs
        with fused_head_on_labelled_positions():
            labelled = model(input_ids=input_ids, labels=labels, fused_lm_head=True).log_probs
    # 11 positions a row predict a next token; 3 of them have a label
    assert scored == [2 * 11, 2 * 3]
    torch.testing.assert_close(labelled, every)
    assert labelled[:, :8].abs().sum() == 0 and labelled[:, 8:].abs().min() > 0
    assert utils._use_triton(torch.device("cpu")) is False  # restored after the block
