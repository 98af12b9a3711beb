"""Asset checks on raw_readmes: what every collected record must be, and the share of GitHub failures."""

from collections import Counter

import dagster as dg

from moxi_pipeline.collect.urls import repo_key
from moxi_pipeline.defs.collect import SETTINGS, raw_readmes
from moxi_pipeline.records import RepoRecord


def _result(bad: list[str], what: str, severity=dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=not bad, severity=severity,
                               metadata={what: len(bad), "examples": dg.MetadataValue.json(bad[:20])})


@dg.asset_check(asset=raw_readmes, description="Every record has a README that is not blank")
def raw_readmes_no_empty_readme(raw_readmes: list[RepoRecord]) -> dg.AssetCheckResult:
    return _result([r.repo_url for r in raw_readmes if not r.readme.strip()], "empty_readmes")


@dg.asset_check(asset=raw_readmes, description="No repository twice, however its URL is spelled")
def raw_readmes_no_duplicate_repo_url(raw_readmes: list[RepoRecord]) -> dg.AssetCheckResult:
    counts = Counter(repo_key(r.repo_url) for r in raw_readmes)
    return _result(sorted(key for key, n in counts.items() if n > 1), "duplicate_repo_urls")


@dg.asset_check(asset=raw_readmes, description="Every record has a file tree: the model's input")
def raw_readmes_file_tree_not_empty(raw_readmes: list[RepoRecord]) -> dg.AssetCheckResult:
    return _result([r.repo_url for r in raw_readmes if not r.file_tree], "empty_file_trees", dg.AssetCheckSeverity.WARN)


@dg.asset_check(asset=raw_readmes, description="GitHub repositories that failed stay under the run's max_failed_share")
def raw_readmes_github_failures_under_threshold(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    event = context.instance.get_latest_materialization_event(raw_readmes.key)
    metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
    if "github_failed" not in metadata:
        return dg.AssetCheckResult(passed=True, metadata={"github": "not a source of the last run"})
    failed, collected = metadata["github_failed"].value, metadata["github_collected"].value
    share = failed / (failed + collected) if failed + collected else 0.0
    # the run's own threshold (RawReadmesConfig.max_failed_share), recorded by the asset; the setting only for
    # materializations from before it was recorded
    limit = metadata["github_max_failed_share"].value if "github_max_failed_share" in metadata else SETTINGS.github_max_failed_share
    return dg.AssetCheckResult(passed=share <= limit, metadata={"failed_share": round(share, 4), "max_failed_share": limit})


RAW_READMES_CHECKS = [raw_readmes_no_empty_readme, raw_readmes_no_duplicate_repo_url, raw_readmes_file_tree_not_empty,
                      raw_readmes_github_failures_under_threshold]
