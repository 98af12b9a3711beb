"""The export phase's wiring: base_model + the best adapter (by eval_report) -> merged_model -> gguf_model."""

from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from moxi_pipeline.defs.resources import ArtifactsResource
from moxi_pipeline.evaluation.report import eval_table
from moxi_pipeline.export.gguf import GGUF_TYPES, export_gguf
from moxi_pipeline.export.merge import merge_adapter
from moxi_pipeline.records import Artifact


def choose_adapter(mode: str, sft_rouge_l: float | None, dpo_rouge_l: float | None) -> tuple[str, str]:
    """("sft" | "dpo", why): DPO in auto mode only when its held-out ROUGE-L is strictly higher than SFT's."""
    if mode in ("sft", "dpo"):
        return mode, f"forced by the run config (adapter: {mode})"
    if mode != "auto":
        raise ValueError(f"merged_model adapter must be auto, sft or dpo, got {mode!r}")
    if sft_rouge_l is None or dpo_rouge_l is None:
        return "sft", "eval_report has no ROUGE-L for both adapters"
    figures = f"held-out ROUGE-L dpo {dpo_rouge_l:.4f} vs sft {sft_rouge_l:.4f}"
    return ("dpo", f"{figures}: DPO is higher") if dpo_rouge_l > sft_rouge_l else ("sft", f"{figures}: DPO is not higher")


class MergedModelConfig(dg.Config):
    adapter: Literal["auto", "sft", "dpo"] = Field(
        default="auto", description="auto: DPO when its held-out ROUGE-L beats SFT's in eval_report, else SFT")


@dg.asset(group_name="model", kinds={"pytorch", "safetensors"})
def merged_model(
    context: dg.AssetExecutionContext, config: MergedModelConfig, artifacts: ArtifactsResource, base_model: Artifact,
    lora_adapter: Artifact, dpo_adapter: Artifact, eval_report: Artifact,
) -> Artifact:
    """The chosen adapter merged into the base model in fp32: plain safetensors, tokenizer, generation config and a
    model card with eval_report's table, loadable without PEFT. Checked: its logits against base + adapter."""
    chosen, reason = choose_adapter(config.adapter, eval_report.metadata.get("fine_tuned_rougeL"),
                                    eval_report.metadata.get("dpo_rougeL"))
    adapter = {"sft": lora_adapter, "dpo": dpo_adapter}[chosen]
    table = eval_table((Path(eval_report.path) / "report.md").read_text())
    result = merge_adapter(base_model.path, adapter.path, artifacts.path("models", "merged_model"), table)
    uri = artifacts.publish(result.out_dir, "models/merged_model")
    run_id = lora_adapter.metadata.get("run_id", "")
    context.add_output_metadata({
        "adapter": chosen, "adapter_reason": reason, "adapter_dir": dg.MetadataValue.path(adapter.path),
        "max_abs_logit_diff": result.max_abs_logit_diff, "size_mb": round(result.size_bytes / 2**20, 1),
        "adapter_run_id": run_id, "path": dg.MetadataValue.path(str(result.out_dir)), "uri": uri,
    })
    return Artifact(name="merged_model", path=str(result.out_dir),
                    metadata={"max_abs_logit_diff": result.max_abs_logit_diff, "uri": uri, "adapter": chosen,
                              "adapter_reason": reason, "adapter_run_id": run_id})


class GgufModelConfig(dg.Config):
    types: list[str] = Field(default=["f16", "q8_0"], description=f"GGUF types to write: {', '.join(GGUF_TYPES)}")


@dg.asset(group_name="model", kinds={"gguf"})
def gguf_model(
    context: dg.AssetExecutionContext, config: GgufModelConfig, artifacts: ArtifactsResource, merged_model: Artifact
) -> Artifact:
    """The merged model as GGUF files for llama.cpp, Ollama and LM Studio. Checked: transformers loads each file
    back and its top-1 next token agrees with the merged model's (>= 0.99 f16, >= 0.95 q8_0)."""
    result = export_gguf(merged_model.path, artifacts.path("models", "gguf_model"), config.types)
    uri = artifacts.publish(result.out_dir, "models/gguf_model")
    context.add_output_metadata({
        **{f"{kind}_top1_agree": share for kind, share in result.top1_agree.items()},
        **{f"{kind}_size_mb": round(size / 2**20, 2) for kind, size in result.size_bytes.items()},
        "files": dg.MetadataValue.md("\n".join(f"- `{path.name}`" for path in result.files.values())),
        "path": dg.MetadataValue.path(str(result.out_dir)), "uri": uri,
    })
    return Artifact(name="gguf_model", path=str(result.out_dir),
                    metadata={"files": {kind: path.name for kind, path in result.files.items()},
                              "top1_agree": result.top1_agree, "uri": uri})
