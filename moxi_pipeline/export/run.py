"""One export, as `moxi export` runs it: an adapter merged into `out/merged`, then GGUF files in `out/gguf`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moxi_pipeline.export.gguf import GgufResult, export_gguf
from moxi_pipeline.export.merge import MergeResult, merge_adapter


@dataclass(frozen=True)
class ExportResult:
    merged: MergeResult
    gguf: GgufResult | None


def parse_gguf_types(text: str) -> tuple[str, ...]:
    """'f16,q8_0' -> ('f16', 'q8_0'); '' or 'none' -> () (merge only)."""
    return tuple(kind.strip() for kind in text.split(",") if kind.strip() and kind.strip() != "none")


def export_adapter(adapter_dir: str | Path, out_dir: str | Path, gguf_types=("f16", "q8_0"),
                   base_dir: str | Path | None = None) -> ExportResult:
    out_dir = Path(out_dir)
    merged = merge_adapter(base_dir, adapter_dir, out_dir / "merged")
    gguf = export_gguf(merged.out_dir, out_dir / "gguf", gguf_types) if gguf_types else None
    return ExportResult(merged, gguf)


def export_line(result: ExportResult) -> str:
    """The one line `moxi export` ends with; a type not exported reads n/a."""
    agree = result.gguf.top1_agree if result.gguf else {}
    figures = " ".join(f"gguf_{kind}_top1_agree={_fmt(agree.get(kind))}" for kind in ("f16", "q8_0"))
    return f"export: merged_max_abs_logit_diff={result.merged.max_abs_logit_diff:.3g} {figures}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
