"""The dataset phase's wiring: readme_chunks -> sft_dataset."""

from collections import Counter

import dagster as dg
from pydantic import Field

from moxi_pipeline.collect import Skipped
from moxi_pipeline.dataset.assembly import (
    dedupe_samples,
    load_public_samples,
    push_dataset,
)
from moxi_pipeline.dataset.chunk import chunk_records
from moxi_pipeline.dataset.instructions_openai import (
    instruct_samples,
)
from moxi_pipeline.dataset.samples import (
    DatasetConfig,
    build_sft_dataset,
    write_sft_dataset,
)
from moxi_pipeline.defs.collect import NETWORK_RETRY, not_retried
from moxi_pipeline.defs.metadata import (
    counts_table,
    fail_past_skip_share,
    image,
    skip_metadata,
)
from moxi_pipeline.defs.resources import ArtifactsResource, OpenAIClient
from moxi_pipeline.records import ReadmeChunk, RepoRecord, SftSample
from moxi_pipeline.settings import load_settings

SETTINGS = load_settings()


class ReadmeChunksConfig(dg.Config):
    min_chars: int = Field(default=1000, description="sections are packed up to at least this size")
    max_chars: int = Field(default=2000, description="a chunk passes this only to keep a code block or table whole")


@dg.asset(group_name="data", kinds={"python"})
def readme_chunks(
    context: dg.AssetExecutionContext, config: ReadmeChunksConfig, raw_readmes: list[RepoRecord]
) -> list[ReadmeChunk]:
    """Markdown-aware chunks of every README, each carrying its repository's tree and key files."""
    chunks = chunk_records(raw_readmes, min_chars=config.min_chars, max_chars=config.max_chars)
    sizes = sorted(len(chunk.content) for chunk in chunks)
    context.add_output_metadata(
        {
            "chunks": len(chunks),
            "repositories": len({chunk.repo_url for chunk in chunks}),
            "median_chars": sizes[len(sizes) // 2] if sizes else 0,
            "max_chars_seen": sizes[-1] if sizes else 0,
        }
    )
    return chunks


class SftDatasetConfig(dg.Config):
    test_fraction: float = Field(default=0.2, description="share of repositories held out of training")
    seed: int = Field(default=0, description="seeds the split by repository")
    max_section_chars: int = Field(default=900, description="a section sample's answer is cut to this many characters")
    max_skipped_share: float = Field(default=0.5, ge=0.0, le=1.0, description="fail when a larger share of samples is skipped")
    instructions: str = Field(default=SETTINGS.instructions, description="template | openai (MOXI_OPENAI_* settings)")
    dedupe_threshold: float = Field(default=0.8, gt=0.0, le=1.0, description="word 3-gram Jaccard at which answers are near duplicates")
    public_dataset: str | None = Field(default=None, description="Alpaca rows to add to train: a .json/.jsonl file, a saved dataset, or a HF name")
    public_dataset_size: int = Field(default=1000, ge=1, description="at most this many public rows")


@dg.asset(group_name="data", kinds={"huggingface"}, retry_policy=NETWORK_RETRY)
def sft_dataset(
    context: dg.AssetExecutionContext,
    config: SftDatasetConfig,
    artifacts: ArtifactsResource,
    openai: OpenAIClient,
    raw_readmes: list[RepoRecord],
    readme_chunks: list[ReadmeChunk],
) -> list[SftSample]:
    """Instruction, input, content samples, split by repository, deduplicated, written as a HF dataset,
    Alpaca JSON and chat JSONL with a dataset card; instructions from the template or an OpenAI-compatible model."""
    if config.instructions not in ("template", "openai"):
        raise dg.Failure(description=f"sft_dataset config instructions={config.instructions!r}: choose template or openai",
                         allow_retries=False)
    dataset_config = DatasetConfig(
        test_fraction=config.test_fraction, seed=config.seed, max_section_chars=config.max_section_chars
    )
    messages: list[str] = []  # build_sft_dataset reports each lossy skip as "skipped <item>: <reason>"
    samples = build_sft_dataset(raw_readmes, readme_chunks, dataset_config, progress=messages.append)
    skipped = [_skipped_from(message) for message in messages if message.startswith("skipped ")]
    for message in messages:
        (context.log.debug if message.startswith("skipped ") else context.log.info)(message)
    samples, removed = dedupe_samples(samples, config.dedupe_threshold)  # before paying for instructions
    usage = {}
    if config.instructions == "openai":
        samples, failed, usage = _openai_instructions(context, openai, samples, artifacts)
        skipped += failed
    with not_retried():  # a re-run of the openai backend resumes, but would skip the same items
        fail_past_skip_share("sft_dataset", skipped, len(samples), config.max_skipped_share)
    public = load_public_samples(config.public_dataset, config.public_dataset_size) if config.public_dataset else []
    provenance = {
        "generator": f"openai:{SETTINGS.openai_model}" if config.instructions == "openai" else "template",
        "sources": dict(Counter(r.source for r in raw_readmes)), "duplicates_removed": removed,
        "dedupe_threshold": config.dedupe_threshold, "split": {"test_fraction": config.test_fraction, "seed": config.seed},
        "public_dataset": config.public_dataset, "public_samples": len(public),
    }
    samples = samples + public
    written = write_sft_dataset(samples, artifacts.path("sft"), provenance)
    if SETTINGS.hf_token and SETTINGS.hf_dataset_repo:
        push_dataset(written["hf_path"], SETTINGS.hf_dataset_repo, SETTINGS.hf_token.get_secret_value())
        context.log.info(f"pushed the dataset to the Hub as {SETTINGS.hf_dataset_repo}")
    published = {}
    if artifacts.s3_bucket:  # locally the dataset is already where readers look
        published["dataset_uri"] = artifacts.publish(artifacts.path("sft"), f"datasets/sft/{written['dataset_hash'][:16]}")
    context.add_output_metadata(
        {
            **published,
            "train_samples": sum(s.split == "train" for s in samples),
            "test_samples": sum(s.split == "test" for s in samples),
            "test_repositories": len({s.repo_url for s in samples if s.split == "test"}),
            "kinds": counts_table((f"{s.split}/{s.kind}" for s in samples), "split/kind"),
            "dataset_hash": written["dataset_hash"],
            "dataset_dir": dg.MetadataValue.path(str(artifacts.path("sft"))),
            "generator": provenance["generator"],
            "duplicates_removed_exact": removed["exact"],
            "duplicates_removed_near": removed["near"],
            "public_samples": len(public),
            "lengths": image(written["lengths_png"], "length histograms"),
            **usage,
            **skip_metadata(skipped, len(samples)),
        }
    )
    return samples


def _openai_instructions(context, openai: OpenAIClient, samples: list[SftSample], artifacts: ArtifactsResource):
    """Samples with the model's instructions, the samples it gave none (with reasons), and usage metadata."""
    config = openai.backend_config(batch_size=SETTINGS.openai_batch_size,
                                   structured_output=SETTINGS.openai_structured_output)
    store = artifacts.path("openai_instructions")
    with openai.resumable_client(context, "sft_dataset", store) as client:
        kept, failed, result = instruct_samples(client, samples, config, store, log=context.log.info)
    return kept, failed, {f"instructions_{key}": value for key, value in result.metadata().items()}


def _skipped_from(message: str) -> Skipped:
    """`skipped u/r chunk 3: 12 chars < min_content_chars=40` -> Skipped("u/r chunk 3", "12 chars < ...")."""
    item, _, reason = message.removeprefix("skipped ").partition(": ")
    return Skipped(item, reason)
