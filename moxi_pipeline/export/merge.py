"""Merge a LoRA adapter into its base model: plain safetensors any Hugging Face tool can load, no PEFT needed.

The merge runs in fp32 and is checked: the saved merged model's logits on `CHECK_TEXT` are compared with
the base model plus the unmerged adapter; the largest absolute difference is returned (fp32 merges measure
~1e-6; a wrong merge or a wrong base measures whole units).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from moxi_pipeline.models.writer import ADAPTER_CONFIG, base_model_of
from moxi_pipeline.storage.folders import publish_dir, staging_dir

# a fixed README text both checks run on: headings, prose, a command, a path
CHECK_TEXT = (
    "# moxi\n\nMoxi writes README files for software repositories.\n\n## Installation\n\n"
    "```bash\npip install -e .\n```\n\n## Usage\n\nRun `moxi generate path/to/repo` to draft a README.md.\n\n"
    "## License\n\nApache-2.0. Contributions are welcome: open an issue or a pull request.\n"
)
EVAL_TABLE_FILES = ("eval_table.md", "report.md")  # an eval table saved beside the adapter, copied into the card
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")


@dataclass(frozen=True)
class MergeResult:
    out_dir: Path
    base_dir: Path
    max_abs_logit_diff: float
    size_bytes: int  # the safetensors files


def merge_adapter(base_dir: str | Path | None, adapter_dir: str | Path, out_dir: str | Path,
                  eval_table: str | None = None) -> MergeResult:
    """`adapter_dir` merged into `base_dir` (None: the base model the adapter names), saved to `out_dir`;
    `eval_table` (Markdown) is the model card's Evaluation section, else a table saved beside the adapter."""
    import torch

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if not (adapter_dir / ADAPTER_CONFIG).is_file():
        raise ValueError(f"adapter {adapter_dir}: not a PEFT adapter directory (no {ADAPTER_CONFIG})")
    base_dir = Path(base_dir) if base_dir is not None else base_model_of(adapter_dir)
    if not (base_dir / "config.json").is_file():
        raise ValueError(f"adapter {adapter_dir}: its base model {base_dir} is missing (no config.json there)")
    model, tokenizer = _load_with_adapter(base_dir, adapter_dir)
    ids = tokenizer(CHECK_TEXT, return_tensors="pt").input_ids
    with torch.no_grad():
        reference = model(ids).logits
    merged = model.merge_and_unload()
    staging = staging_dir(out_dir)
    merged.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    if (base_dir / "generation_config.json").is_file():
        shutil.copy(base_dir / "generation_config.json", staging / "generation_config.json")
    (staging / "README.md").write_text(model_card(base_dir, adapter_dir, eval_table))
    max_diff = max_abs_logit_diff(staging, ids, reference)
    for path in staging.iterdir():  # safetensors writes its file 0600; a model to take away is readable by all
        path.chmod(0o644)
    publish_dir(staging, out_dir)
    size = sum(path.stat().st_size for path in out_dir.glob("*.safetensors"))
    return MergeResult(out_dir=out_dir, base_dir=base_dir, max_abs_logit_diff=max_diff, size_bytes=size)


def _load_with_adapter(base_dir: Path, adapter_dir: Path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    try:
        model = PeftModel.from_pretrained(base, str(adapter_dir))
    except RuntimeError as error:  # size mismatch: the adapter was trained on another base model
        raise ValueError(
            f"adapter {adapter_dir} was trained on another base model than {base_dir}: {str(error)[:300]}"
        ) from error
    tokenizer_dir = adapter_dir if all((adapter_dir / name).is_file() for name in TOKENIZER_FILES) else base_dir
    return model.eval(), AutoTokenizer.from_pretrained(str(tokenizer_dir))


def max_abs_logit_diff(model_dir: Path, ids, reference) -> float:
    """The largest |logit| difference between the model saved in `model_dir` and `reference`, in fp32."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    with torch.no_grad():
        return float((model(ids).logits - reference).abs().max())


def model_card(base_dir: Path, adapter_dir: Path, eval_table: str | None = None) -> str:
    """README.md with Hugging Face metadata front matter (read by the Hub and by `huggingface_hub.ModelCard`)."""
    import yaml

    from moxi_pipeline.models.base import EMBEDDED_GGUF_SOURCES

    source = _read_json(base_dir / "moxi_source.json").get("source", str(base_dir))
    dataset_hash = _read_json(adapter_dir / "training_config.json").get("dataset_hash")
    embedded = EMBEDDED_GGUF_SOURCES.get(source)
    front = {
        "base_model": embedded.hub_id if embedded else source,
        "library_name": "transformers",
        # the base model's licence (SmolLM2: apache-2.0, Gemma: the Gemma terms); another base names its own.
        # The training READMEs are permissively licensed (collect/licenses.py).
        "license": embedded.license if embedded else "other",
        "datasets": [f"moxi-readme-sft-{dataset_hash}" if dataset_hash else "moxi-readme-sft"],
        "tags": ["moxi", "readme", "lora", "merged", "text-generation"],
        "pipeline_tag": "text-generation",
    }
    table = next((adapter_dir / name for name in EVAL_TABLE_FILES if (adapter_dir / name).is_file()), None)
    eval_table = eval_table or (table.read_text() if table else None)
    evaluation = f"\n## Evaluation\n\n{eval_table.strip()}\n" if eval_table else ""
    return f"""---
{yaml.safe_dump(front, sort_keys=False).strip()}
---

# Moxi README writer (merged)

The Moxi LoRA adapter `{adapter_dir.name}` merged into its base model (`{source}`) in fp32, saved as
plain safetensors: load it with `AutoModelForCausalLM.from_pretrained(this_folder)`, no PEFT needed.
It writes README.md sections for software repositories from a chat-template prompt.
{evaluation}"""


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}
