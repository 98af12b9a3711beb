"""The preference phase's wiring: lora_adapter + sft_dataset -> preference_pairs -> dpo_adapter."""

import statistics

import dagster as dg
from pydantic import Field

from moxi_pipeline.defs.metadata import image
from moxi_pipeline.defs.resources import ArtifactsResource, OpenAIClient
from moxi_pipeline.defs.training import GPU_POOL, GPU_TAGS
from moxi_pipeline.records import Artifact, SftSample
from moxi_pipeline.settings import load_settings
from moxi_pipeline.training.dpo import (
    default_dpo_profile,
    load_dpo_config,
    plot_dpo,
    train_dpo,
)
from moxi_pipeline.training.preferences import (
    build_preference_pairs,
    grounding_counts,
    plot_lengths,
    read_pairs,
    train_prompts,
    write_pairs,
)
from moxi_pipeline.training.preferences_openai import openai_chosen

SETTINGS = load_settings()


PROFILE = SETTINGS.dpo_profile or default_dpo_profile(SETTINGS.train_profile)


class PreferencePairsConfig(dg.Config):
    profile: str = Field(default=PROFILE, description="configs/dpo_<profile>.yaml: its max_pairs, pair_max_new_tokens, "
                                                      "pair_temperature and max_rouge_l; the fields below override them")
    max_rouge_l: float | None = Field(default=None, description="keep a pair when ROUGE-L(chosen, rejected) is under this")
    max_pairs: int | None = Field(default=None, description="at most this many train prompts")
    max_new_tokens: int | None = Field(default=None, description="length of the SFT adapter's rejected answer")
    temperature: float | None = Field(default=None, description="sampling temperature of the rejected answer")
    device: str = Field(default="auto", description="auto | cpu | cuda")
    preferences: str = Field(default=SETTINGS.preferences, description="sft | openai: the chosen answer is the real "
                                                                       "section or the openai model's (MOXI_PREFERENCES)")


@dg.asset(group_name="model", kinds={"pytorch"})
def preference_pairs(context: dg.AssetExecutionContext, config: PreferencePairsConfig, artifacts: ArtifactsResource,
                     openai: OpenAIClient, base_model: Artifact, lora_adapter: Artifact,
                     sft_dataset: list[SftSample]) -> Artifact:
    """One (chosen: the real grounded section, or with preferences=openai the OpenAI-compatible model's grounded
    answer; rejected: the SFT adapter's raw answer) pair per train prompt.
    Generation resumes from progress.jsonl after a kill; re-runs generate only what it lacks."""
    from pathlib import Path

    from moxi_pipeline.models.writer import WriterSpec, load_writer

    profile = load_dpo_config(config.profile, **{name: value for name, value in (
        ("max_rouge_l", config.max_rouge_l), ("max_pairs", config.max_pairs),
        ("pair_max_new_tokens", config.max_new_tokens), ("pair_temperature", config.temperature)) if value is not None})
    if config.preferences not in ("sft", "openai"):
        raise dg.Failure(description=f"preference_pairs config preferences={config.preferences!r}: choose sft or openai")
    pair_config = profile.preference_config()
    out_dir = artifacts.path("preferences", lora_adapter.metadata.get("run_id", "adapter"))
    chosen, usage = None, {}
    if config.preferences == "openai":
        chosen, usage = _openai_chosen(context, openai, train_prompts(sft_dataset, pair_config), artifacts)
    model, tokenizer = load_writer(WriterSpec(Path(base_model.path), Path(lora_adapter.path)), config.device)
    result = build_preference_pairs(model, tokenizer, sft_dataset, pair_config, out_dir / "progress.jsonl", chosen)
    path = write_pairs(result.pairs, out_dir / "pairs.jsonl")
    grounding = grounding_counts(result.pairs, sft_dataset)
    context.add_output_metadata({
        "pairs": len(result.pairs), "generated_now": result.generated, "skipped": sum(result.skipped.values()),
        "skipped_by_reason": dg.MetadataValue.json(result.skipped), "profile": config.profile,
        "chosen_from": f"openai:{SETTINGS.openai_model}" if config.preferences == "openai" else "sft", **usage,
        "chosen_chars_median": statistics.median(len(p.chosen) for p in result.pairs),
        "rejected_chars_median": statistics.median(len(p.rejected) for p in result.pairs),
        "rouge_l_mean": statistics.fmean(p.rouge_l for p in result.pairs),
        # what grounding would cut from the rejected answers: what DPO teaches the adapter not to write
        "rejected_with_ungrounded": grounding["answers_with_any"],
        **{f"rejected_with_ungrounded_{kind}": count for kind, count in grounding["answers_with"].items()},
        "ungrounded_removed_by_kind": dg.MetadataValue.json(grounding["removed"]),
        "lengths": image(plot_lengths(result.pairs, out_dir / "lengths.png"), "chosen and rejected lengths"),
        "path": dg.MetadataValue.path(str(path)),
    })
    return Artifact(name="preference_pairs", path=str(path), metadata={"pairs": len(result.pairs)})


def _openai_chosen(context, openai: OpenAIClient, samples: list[SftSample], artifacts: ArtifactsResource):
    """Prompt key -> the openai model's grounded answer, and usage metadata; the backend's cache lives beside the
    instructions' so a re-run (or another adapter's pairs for the same prompts) pays for no answer twice."""
    store = artifacts.path("openai_preferences")
    with openai.resumable_client(context, "preference_pairs", store) as client:
        chosen, missing, result = openai_chosen(client, samples, openai.backend_config(), store, log=context.log.info)
    usage = {f"openai_{key}": value for key, value in result.metadata().items() if key not in ("instructions", "failures")}
    return chosen, {**usage, "openai_answers": len(chosen), "openai_missing": len(missing)}


class DpoAdapterConfig(dg.Config):
    profile: str = Field(default=PROFILE, description="configs/dpo_<profile>.yaml: demo | cpu | gpu-3b")
    max_steps: int | None = Field(default=None, description="override the profile's max_steps")
    device: str = Field(default=SETTINGS.train_device, description="auto | cpu | cuda (MOXI_TRAIN_DEVICE)")


@dg.asset(group_name="model", kinds={"pytorch"}, pool=GPU_POOL, op_tags=GPU_TAGS)
def dpo_adapter(context: dg.AssetExecutionContext, config: DpoAdapterConfig, artifacts: ArtifactsResource,
                base_model: Artifact, lora_adapter: Artifact, preference_pairs: Artifact) -> Artifact:
    """The SFT adapter continued with TRL's DPOTrainer on preference_pairs; the reference is the frozen SFT adapter."""
    overrides = {"device": config.device, **({"max_steps": config.max_steps} if config.max_steps else {})}
    dpo_config = load_dpo_config(config.profile, **overrides)
    run_id = lora_adapter.metadata.get("run_id", "adapter")
    result = train_dpo(base_model.path, lora_adapter.path, read_pairs(preference_pairs.path), dpo_config,
                       artifacts.path("models", "dpo_adapter", run_id), checkpoint_store=artifacts.checkpoint_store())
    last = result.history[-1] if result.history else {}
    context.add_output_metadata({
        "steps": result.steps, "resumed_from_step": result.resumed_from_step, "duration_s": round(result.duration_s, 1), "final_loss": last.get("loss", float("nan")),
        "reward_margin": last.get("rewards/margins", float("nan")),
        "reward_accuracy": last.get("rewards/accuracies", float("nan")),
        "curves": image(plot_dpo(result.history, result.adapter_dir / "dpo_curves.png"), "DPO loss and rewards"),
        "adapter_dir": dg.MetadataValue.path(str(result.adapter_dir)),
    })
    return Artifact(name="dpo_adapter", path=str(result.adapter_dir),
                    metadata={"run_id": run_id, "steps": result.steps, "profile": config.profile})
