"""Model folders: written whole or not at all, and valid wherever the data folder is moved.

`import_base_model` and `train_adapter` write into a temporary folder and rename it into place; these tests
stand in fakes for transformers and TRL so the folder handling runs in milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import sys
import types
from pathlib import Path

import pytest


class _FakeModel:
    """Enough of a transformers model for import_base_model; `fail` stops save_pretrained half-way."""

    dtype = "torch.float32"
    config = type("Config", (), {"architectures": ["FakeForCausalLM"]})()

    def __init__(self, fail: bool = False):
        self.fail = fail

    def parameters(self):
        return [type("Weight", (), {"numel": lambda self: 7})()]

    def save_pretrained(self, path):
        (Path(path) / "config.json").write_text("{}")
        if self.fail:
            raise OSError("No space left on device")
        (Path(path) / "model.safetensors").write_text("weights")


class _FakeTokenizer:
    def save_pretrained(self, path):
        (Path(path) / "tokenizer.json").write_text("{}")


def _fake_sources(monkeypatch, **models) -> list[str]:
    from moxi_pipeline.models import base as modeling

    loaded = []

    def load_source(source):
        loaded.append(source)
        return models[source], _FakeTokenizer()

    monkeypatch.setattr(modeling, "_load_source", load_source)
    return loaded


def test_base_model_import_survives_moving_the_data_folder(tmp_path, monkeypatch):
    from moxi_pipeline.models.base import import_base_model

    loaded = _fake_sources(monkeypatch, tiny=_FakeModel())
    first = import_base_model("tiny", tmp_path / "data" / "models" / "base_model")
    (tmp_path / "data").rename(tmp_path / "moved")
    moved = import_base_model("tiny", tmp_path / "moved" / "models" / "base_model")
    assert moved.path == str(tmp_path / "moved" / "models" / "base_model")  # not the old absolute path
    assert (moved.source, moved.parameters, moved.architecture) == (first.source, 7, "FakeForCausalLM")
    assert loaded == ["tiny"]  # the second call used the cached import
    marker = json.loads((tmp_path / "moved" / "models" / "base_model" / "moxi_source.json").read_text())
    assert marker["path"] == "."


def test_base_model_import_that_crashes_leaves_no_folder(tmp_path, monkeypatch):
    from moxi_pipeline.models.base import import_base_model

    _fake_sources(monkeypatch, broken=_FakeModel(fail=True), tiny=_FakeModel())
    out_dir = tmp_path / "models" / "base_model"
    with pytest.raises(OSError, match="No space left"):
        import_base_model("broken", out_dir)
    assert not out_dir.exists()  # half of a model (config.json, no weights) must not look like one
    info = import_base_model("tiny", out_dir)
    assert info.path == str(out_dir)
    assert sorted(p.name for p in out_dir.iterdir()) == ["config.json", "model.safetensors", "moxi_source.json", "tokenizer.json"]
    assert sorted(p.name for p in out_dir.parent.iterdir()) == ["base_model"]  # no staging folder left over


def test_base_model_reimport_replaces_the_whole_folder(tmp_path, monkeypatch):
    from moxi_pipeline.models.base import import_base_model

    _fake_sources(monkeypatch, a=_FakeModel(), b=_FakeModel())
    out_dir = tmp_path / "base_model"
    import_base_model("a", out_dir)
    (out_dir / "stale-shard.safetensors").write_text("from source a")
    assert import_base_model("b", out_dir).source == "b"
    assert not (out_dir / "stale-shard.safetensors").exists()  # nothing of source a mixes into b


def test_train_adapter_that_crashes_leaves_no_adapter_folder(tmp_path, monkeypatch):
    from moxi_pipeline.models import base as modeling
    from moxi_pipeline.training import train
    from moxi_pipeline.records import SampleInput, SftSample

    class FakeTrainer:
        def __init__(self, **kwargs):
            self.state = types.SimpleNamespace(log_history=[{"step": 1, "loss": 2.0}], global_step=1, max_steps=1,
                                               num_input_tokens_seen=8)

        def train(self, resume_from_checkpoint=None):
            pass

        def evaluate(self):
            return {"eval_loss": 1.5}

        def save_model(self, path):
            (Path(path) / "adapter_model.safetensors").write_text("lora")

    def crash(out_dir, *args):
        (out_dir / "training_config.json").write_text("{")
        raise KeyboardInterrupt  # killed while writing the records beside the adapter

    monkeypatch.setitem(sys.modules, "trl", types.SimpleNamespace(SFTTrainer=FakeTrainer))
    monkeypatch.setattr(modeling, "resolve_device", lambda device: "cpu")
    monkeypatch.setattr(train, "load_for_training", lambda *args: (None, _FakeTokenizer(), None))
    monkeypatch.setattr(train, "build_dataset", lambda *args: [])
    # the arguments only need what train_adapter itself calls: the DDP "first process decides" guard
    fake_args = types.SimpleNamespace(main_process_first=lambda **kwargs: contextlib.nullcontext())
    monkeypatch.setattr(train, "sft_config", lambda *args, **kwargs: fake_args)
    sample = SftSample(instruction="Write it.", content="# r\n\ntext", repo_url="u", repo="r", kind="readme",
                       split="train", input=SampleInput(file_tree=("a.py",), project_type="python_project"))
    config = train.load_train_config("demo", device="cpu")
    out_dir = tmp_path / "lora_adapter" / "run1"
    monkeypatch.setattr(train, "write_records", crash)
    with pytest.raises(KeyboardInterrupt):
        train.train_adapter(tmp_path / "base", [sample], [sample], config, out_dir, dataset_hash="h")
    assert not out_dir.exists()
    monkeypatch.setattr(train, "write_records", lambda out_dir, *args: (out_dir / "README.md").write_text("card"))
    result = train.train_adapter(tmp_path / "base", [sample], [sample], config, out_dir, dataset_hash="h")
    assert (result.adapter_dir, result.loss_plot) == (str(out_dir), str(out_dir / "loss_curve.png"))
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "README.md", "adapter_model.safetensors", "loss_curve.png", "tokenizer.json"]
    assert sorted(p.name for p in out_dir.parent.iterdir()) == ["run1"]


def test_an_adapter_finds_its_base_model_after_the_data_folder_moves(tmp_path):
    # training_config.json names the base model relative to the adapter folder, not by an absolute path
    import json
    import shutil

    from moxi_pipeline.models.writer import base_model_of
    from moxi_pipeline.training.adapter_card import write_records
    from moxi_pipeline.training.train import TrainResult, load_train_config

    data = tmp_path / "data"
    base, adapter = data / "models" / "base_model", data / "models" / "lora_adapter" / "run1"
    base.mkdir(parents=True)
    adapter.mkdir(parents=True)
    (base / "config.json").write_text("{}")
    result = TrainResult(adapter_dir=str(adapter), steps=1, duration_s=1.0, train_tokens=1, tokens_per_s=1.0,
                         losses=[], eval_loss=None, loss_plot="", dataset_hash="h")
    write_records(adapter, base, load_train_config("demo"), result, [], 1, 0)
    assert json.loads((adapter / "training_config.json").read_text())["base_model_dir"] == "../../base_model"
    shutil.move(str(data), str(tmp_path / "moved"))
    moved = tmp_path / "moved" / "models"
    assert base_model_of(moved / "lora_adapter" / "run1") == moved / "lora_adapter" / "run1" / "../../base_model"
    assert (base_model_of(moved / "lora_adapter" / "run1") / "config.json").is_file()


def test_artifact_pointers_are_stored_relative_to_the_data_folder(tmp_path):
    import json
    import shutil

    import dagster as dg

    from moxi_pipeline.defs.io_managers import LocalRecordIOManager
    from moxi_pipeline.records import Artifact

    data = tmp_path / "data"
    manager = LocalRecordIOManager(data_dir=str(data))
    artifact = Artifact(name="base_model", path=str(data / "models" / "base_model"))
    manager.handle_output(dg.build_output_context(asset_key=dg.AssetKey("base_model")), artifact)
    assert json.loads((data / "artifacts" / "base_model.json").read_text())["path"] == "models/base_model"
    shutil.move(str(data), str(tmp_path / "moved"))
    moved = LocalRecordIOManager(data_dir=str(tmp_path / "moved"))
    context = dg.build_input_context(asset_key=dg.AssetKey("base_model"), dagster_type=dg.DagsterType(
        type_check_fn=lambda _, __: True, name="Artifact", typing_type=Artifact))
    assert moved.load_input(context).path == str(tmp_path / "moved" / "models" / "base_model")
