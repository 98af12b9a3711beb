"""The models the page offers: the template floor, the base model, each adapter run (with its headline
metrics when `moxi evaluate`/eval_report scored it), and merged models, found under the data folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from moxi_pipeline.models.writer import (
    ADAPTER_CONFIG,
    WriterSpec,
    resolve_model,
    resolve_writer,
)

TEMPLATE_LABEL = "template (facts only, no model)"


@dataclass(frozen=True)
class ModelChoice:
    label: str
    kind: str  # template | base | adapter | merged | gguf
    path: Path | None = None


def _headline(adapter_dir: Path, data_dir: Path) -> str:
    """ROUGE-L and eval loss of the newest evaluated run of this adapter, or ""."""
    found = []
    for metrics in (data_dir / "eval" / "runs").glob("*/metrics.json"):
        try:
            summary = json.loads(metrics.read_text())
        except (OSError, ValueError):
            continue
        adapter = summary.get("adapter_dir")
        if adapter and Path(adapter).resolve() == adapter_dir.resolve() and "fine_tuned" in summary.get("systems", {}):
            found.append((metrics.stat().st_mtime, summary["systems"]["fine_tuned"]))
    if not found:
        return ""
    best = max(found, key=lambda item: item[0])[1]
    parts = [f"ROUGE-L {best['rougeL']:.3f}" if best.get("rougeL") is not None else "",
             f"eval loss {best['eval_loss']:.2f}" if best.get("eval_loss") is not None else ""]
    return ", ".join(part for part in parts if part)


def list_models(settings) -> list[ModelChoice]:
    choices = [ModelChoice(TEMPLATE_LABEL, "template")]
    base = settings.models_dir / "base_model"
    if (base / "config.json").is_file():
        choices.append(ModelChoice("base model (zero-shot)", "base", base))
    adapters = [p.parent for p in settings.adapters_dir.glob(f"*/{ADAPTER_CONFIG}")]
    for adapter in sorted(adapters, key=lambda p: p.stat().st_mtime, reverse=True):
        headline = _headline(adapter, settings.data_dir)
        choices.append(ModelChoice(f"adapter {adapter.name}" + (f" ({headline})" if headline else " (not evaluated)"),
                                   "adapter", adapter))
    # `moxi export --out data/models/<name>` writes <name>/merged/ and <name>/gguf/*.gguf
    merged = [*settings.models_dir.glob("*/config.json"), *settings.models_dir.glob("*/merged/config.json")]
    for config in sorted(merged):
        if config.parent.name != "base_model":
            name = config.parent.relative_to(settings.models_dir)
            choices.append(ModelChoice(f"merged model {name}", "merged", config.parent))
    for gguf in sorted(settings.models_dir.glob("*/**/*.gguf")):
        choices.append(ModelChoice(f"GGUF {gguf.relative_to(settings.models_dir)}", "gguf", gguf))
    return choices


def writer_for(choice: ModelChoice, settings) -> WriterSpec | None:
    """The WriterSpec to load, or None for the template floor."""
    if choice.kind == "template":
        return None
    if choice.kind == "adapter":
        return resolve_writer(str(choice.path), settings.adapters_dir, settings.models_dir, settings.data_dir / "cache" / "s3")
    if choice.kind == "base":
        return WriterSpec(choice.path)
    return resolve_model(str(choice.path))  # merged folder or .gguf file
