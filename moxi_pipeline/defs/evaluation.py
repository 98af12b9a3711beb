"""The evaluation phase's wiring: eval_report, run_comparison, and the check that compares the models."""

import time
from pathlib import Path

import dagster as dg
from pydantic import Field

from moxi_pipeline.defs.metadata import image
from moxi_pipeline.defs.resources import ArtifactsResource
from moxi_pipeline.evaluation.evaluate import EvalConfig, evaluate
from moxi_pipeline.evaluation.report import compare_runs, write_eval_report
from moxi_pipeline.models.writer import WriterSpec
from moxi_pipeline.records import Artifact, RepoRecord, SftSample

MAX_PATH_RATE = 0.05  # the check's threshold: at most 5% of mentioned paths may be missing from the tree
class EvalReportConfig(dg.Config):
    max_repos: int = Field(default=6, description="held-out repositories to write READMEs for (~5 s each per model on 2 cores)")
    device: str = Field(default="auto", description="auto | cpu | cuda")


@dg.asset(group_name="model", kinds={"pytorch"})
def eval_report(
    context: dg.AssetExecutionContext,
    config: EvalReportConfig,
    artifacts: ArtifactsResource,
    base_model: Artifact,
    lora_adapter: Artifact,
    dpo_adapter: Artifact,
    sft_dataset: list[SftSample],
    raw_readmes: list[RepoRecord],
) -> Artifact:
    """The template floor, the base model zero-shot, the SFT adapter and the DPO adapter, on held-out repositories."""
    test_urls = {s.repo_url for s in sft_dataset if s.split == "test"}
    report = evaluate(
        WriterSpec(Path(base_model.path), Path(lora_adapter.path)), [r for r in raw_readmes if r.repo_url in test_urls],
        [s for s in sft_dataset if s.split == "test"], EvalConfig(max_repos=config.max_repos, device=config.device),
        progress=lambda what, done, total: context.log.info(f"eval {done}/{total}: {what}"),
        dpo_adapter_dir=Path(dpo_adapter.path),
    )
    run_id = lora_adapter.metadata.get("run_id") or time.strftime("%Y%m%d-%H%M%S")
    report = report.model_copy(update={"run": {"records": "raw_readmes (test split)", "profile": lora_adapter.metadata.get("profile", "—"),
                                               "dataset_hash": lora_adapter.metadata.get("dataset_hash", "")[:12]}})
    paths = write_eval_report(report, artifacts.path("eval", "runs", run_id))
    headline = {f"{system}_{metric}": round(value, 4) for system, summary in report.systems.items()
                for metric, value in summary.items() if isinstance(value, (int, float)) and not isinstance(value, bool)}
    headline |= {f"paired_{pair.replace(' - ', '_minus_')}_rougeL": round(d["mean"], 4) for pair, d in report.paired.items()}
    context.add_output_metadata({**headline, "repositories": report.n_repos,
                                 "report": dg.MetadataValue.md(Path(paths["report"]).read_text()),
                                 "metrics_plot": image(paths["plot"], "template, base, SFT and DPO"),
                                 "report_path": dg.MetadataValue.path(paths["report"]),
                                 "report_uri": artifacts.publish(Path(paths["report"]).parent, f"eval/runs/{run_id}")})
    return Artifact(name="eval_report", path=str(Path(paths["report"]).parent), metadata=headline)


@dg.asset(group_name="model", kinds={"python"}, deps=[eval_report])
def run_comparison(context: dg.AssetExecutionContext, artifacts: ArtifactsResource) -> Artifact:
    """Every evaluated run side by side: model, adapter, data, profile, metrics, and a plot."""
    runs = sorted(p.parent for p in artifacts.path("eval", "runs").glob("*/metrics.json"))
    path = compare_runs(runs, artifacts.path("eval"))
    context.add_output_metadata({"runs": len(runs), "comparison": dg.MetadataValue.md(path.read_text().split("![")[0]),
                                 "plot": image(path.parent / "comparison.png", "runs compared")})
    return Artifact(name="run_comparison", path=str(path), metadata={"runs": len(runs)})


@dg.asset_check(asset=eval_report, description="The adapter beats the base model and the template floor on ROUGE-L, "
                "and under 5% of the file paths it mentions are missing from the repository")
def adapter_beats_base_and_template(eval_report: Artifact) -> dg.AssetCheckResult:
    meta = eval_report.metadata
    tuned, base, floor = (meta.get(f"{s}_rougeL") for s in ("fine_tuned", "base", "template"))
    paths = meta.get("fine_tuned_hallucinated_path_rate")
    passed = None not in (tuned, base, floor, paths) and tuned > base and tuned > floor and paths <= MAX_PATH_RATE
    return dg.AssetCheckResult(
        passed=bool(passed), severity=dg.AssetCheckSeverity.WARN,
        metadata={"fine_tuned_rougeL": tuned if tuned is not None else float("nan"),
                  "base_rougeL": base if base is not None else float("nan"),
                  "template_rougeL": floor if floor is not None else float("nan"),
                  "hallucinated_path_rate": paths if paths is not None else float("nan"),
                  "max_hallucinated_path_rate": MAX_PATH_RATE,
                  # the DPO adapter's figures, for the record: the check judges the SFT adapter
                  "dpo_rougeL": meta.get("dpo_rougeL", float("nan")),
                  "dpo_hallucinated_path_rate": meta.get("dpo_hallucinated_path_rate", float("nan")),
                  "dpo_minus_fine_tuned_rougeL": meta.get("paired_dpo_minus_fine_tuned_rougeL", float("nan"))},
    )
