"""The collect phase's wiring: raw_readmes."""

from contextlib import contextmanager

import dagster as dg
from pydantic import Field

from moxi_pipeline.collect import GitHubSource, collect_sources
from moxi_pipeline.collect.awesome import split_specs
from moxi_pipeline.collect.github import GitHubClient
from moxi_pipeline.collect.github_repos import load_state, save_state
from moxi_pipeline.defs.metadata import (
    counts_table,
    fail_past_skip_share,
    github_metadata,
    skip_metadata,
)
from moxi_pipeline.records import RepoRecord
from moxi_pipeline.settings import load_settings, may_send_secret, parse_collect_sources

SETTINGS = load_settings()


# the network assets re-run their step on a failure the clients' own retries did not absorb (an outage, a
# rate-limit window): 2 more tries after ~10 s and ~20 s (exponential, +-jitter so parallel runs spread out)
NETWORK_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


@contextmanager
def not_retried():
    """What a re-run would only repeat (bad config or input, skips past their threshold) fails at once, bypassing
    NETWORK_RETRY; everything else (the network) re-runs the step."""
    try:
        yield
    except dg.Failure as failure:
        raise dg.Failure(description=failure.description, metadata=failure.metadata, allow_retries=False) from failure
    except (ValueError, FileNotFoundError) as error:
        raise dg.Failure(description=str(error), allow_retries=False) from error


class RawReadmesConfig(dg.Config):
    source: str = Field(default=SETTINGS.collect_source,
                        description="installed | jsonl | local | github, or several: installed,jsonl:extra.jsonl")
    path: str | None = Field(default=SETTINGS.collect_path, description="file (jsonl) or folder (local)")
    limit: int | None = Field(default=SETTINGS.collect_limit, description="keep at most this many repositories")
    # the installed demo source skips ~45% by design (reST and one-line descriptions), so 0.6 leaves it room
    max_skipped_share: float = Field(default=0.6, ge=0.0, le=1.0, description="fail when a larger share of items is skipped")
    awesome_lists: str = Field(default=SETTINGS.github_awesome_lists, description="github: lists, comma-separated")
    github_api_url: str = Field(default=SETTINGS.github_api_url,
                                description="github: the API base URL; GITHUB_TOKEN goes only to MOXI_GITHUB_API_URL")
    max_failed_share: float = Field(default=SETTINGS.github_max_failed_share, ge=0.0, le=1.0,
                                    description="github: fail when a larger share of repositories fails")
    state_dir: str = Field(default=str(SETTINGS.data_dir), description="github: where the last run's state is kept")


def _github_source(config: RawReadmesConfig) -> GitHubSource:
    """The token comes from settings only, never from run config, so Dagster never stores or shows it; and it goes
    only to the operator's MOXI_GITHUB_API_URL: a run config naming another API runs unauthenticated."""
    token = SETTINGS.github_token.get_secret_value() if SETTINGS.github_token else None
    if token and not may_send_secret(config.github_api_url, SETTINGS.github_api_url):
        token = None
    client = GitHubClient(config.github_api_url, token, timeout_s=SETTINGS.github_timeout_s,
                          max_retries=SETTINGS.github_max_retries)
    return GitHubSource(client, split_specs(config.awesome_lists), load_state(config.state_dir), SETTINGS.github_concurrency)


@dg.asset(group_name="data", kinds={"python", "github"}, retry_policy=NETWORK_RETRY)
def raw_readmes(context: dg.AssetExecutionContext, config: RawReadmesConfig) -> list[RepoRecord]:
    """READMEs, file trees and key files of repositories, in the collection schema."""
    with not_retried():
        sources = parse_collect_sources(config.source, config.path)
        github = _github_source(config) if any(name == "github" for name, _ in sources) else None
        result = collect_sources(
            sources, limit=config.limit, github=github,
            progress=lambda done, total: context.log.info(f"collected {done}/{total}") if done % 25 == 0 or done == total else None,
        )
    if github is not None and github.run is not None:
        save_state(config.state_dir, github.run.state)  # before any failure below: the next run resumes
        # the check on failures reads this threshold: the one this run was held to, not an import-time setting
        context.add_output_metadata({**github_metadata(github), "github_max_failed_share": config.max_failed_share})
        with not_retried():
            fail_past_skip_share("raw_readmes (github)", github.run.skipped, len(github.run.records), config.max_failed_share)
    for item in result.skipped:
        context.log.debug(f"skipped {item.item}: {item.reason}")
    with not_retried():
        fail_past_skip_share("raw_readmes", result.skipped, len(result.records), config.max_skipped_share)
    context.log.info(f"raw_readmes: {len(result.records)} repositories, {len(result.skipped)} items skipped")
    context.add_output_metadata(
        {
            "repositories": len(result.records),
            "source": config.source,
            "sources": counts_table((r.source for r in result.records), "source"),
            "project_types": counts_table((r.project_type for r in result.records), "project_type"),
            **skip_metadata(result.skipped, len(result.records)),
        }
    )
    return result.records
