"""Checkpoints through S3 (moto's server, real HTTP) on the tiny model: a run killed at step 3 whose local
checkpoints are lost resumes from the published checkpoint-2 and ends where an uninterrupted run ends; the
plain-file form round-trips a real Trainer checkpoint exactly and holds no pickle."""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

from moxi_pipeline.storage.artifacts import (
    MANIFEST,
    LocalArtifacts,
    S3Artifacts,
    plain_files,
)
from moxi_pipeline.training.checkpoints import (
    PublishedCheckpoints,
    join_tensors,
    load_torch_saved,
    rebuild_checkpoint,
    split_tensors,
    write_plain_checkpoint,
)
from moxi_pipeline.training.train import checkpoint_dir_for, train_adapter
from moxi_pipeline_tests.storage.test_artifacts_s3 import (  # noqa: F401 (fixture)
    BUCKET,
    object_keys,
    s3_endpoint,
)
from moxi_pipeline_tests.training.test_train_resume import (
    SAMPLES,
    Killed,
    kill_at,
    lora_weights,
    tiny_config,
)

CONFIG = tiny_config(max_steps=4, save_steps=2)  # checkpoint-2, checkpoint-4


def assert_same_state(expected, got, path="state"):
    """Equal values of the same types all the way down; tensors and arrays bit for bit, dtype and shape too."""
    import torch

    assert type(got) is type(expected), path
    if isinstance(expected, torch.Tensor):
        assert (got.dtype, got.shape) == (expected.dtype, expected.shape), path
        assert torch.equal(got.reshape(-1).view(torch.uint8), expected.reshape(-1).view(torch.uint8)), path
    elif isinstance(expected, np.ndarray):
        assert got.dtype == expected.dtype and np.array_equal(got, expected), path
    elif isinstance(expected, dict):
        assert list(got) == list(expected), path
        for key in expected:
            assert_same_state(expected[key], got[key], f"{path}.{key}")
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), path
        for index, (a, b) in enumerate(zip(expected, got)):
            assert_same_state(a, b, f"{path}.{index}")
    else:
        assert got == expected, path


@pytest.fixture(scope="module")
def s3(s3_endpoint, tmp_path_factory):  # noqa: F811 (the fixture imported above)
    return S3Artifacts(BUCKET, tmp_path_factory.mktemp("s3-cache"), prefix="moxi", endpoint_url=s3_endpoint)


@pytest.fixture(scope="module")
def killed(tiny_model_dir, s3, tmp_path_factory):
    """A run with S3 checkpoints killed at step 3; its local checkpoint-2 is kept aside, then the disk is lost."""
    root = tmp_path_factory.mktemp("killed")
    out = root / "run-a"
    with pytest.raises(Killed):
        train_adapter(tiny_model_dir, SAMPLES, SAMPLES[:2], CONFIG, out, "h", progress=kill_at(3), checkpoint_store=s3)
    saved = shutil.copytree(checkpoint_dir_for(out) / "checkpoint-2", root / "saved" / "checkpoint-2")
    published = object_keys(s3, "moxi/checkpoints/run-a/")
    shutil.rmtree(checkpoint_dir_for(out))  # a fresh node: nothing on local disk
    return out, saved, published


@pytest.fixture(scope="module")
def resumed(tiny_model_dir, s3, killed):
    out, _, _ = killed
    logs: list[dict] = []
    result = train_adapter(tiny_model_dir, SAMPLES, SAMPLES[:2], CONFIG, out, "h", progress=logs.append, checkpoint_store=s3)
    return result, out, logs


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    return train_adapter(tiny_model_dir, SAMPLES, SAMPLES[:2], CONFIG, out, "h"), out


# ---- the plain-file form ------------------------------------------------------------------------


def test_a_real_checkpoint_has_no_pickle_in_its_plain_form(killed, tmp_path):
    _, saved, _ = killed
    plain = write_plain_checkpoint(saved, tmp_path / "plain")
    names = {path.name for path in plain_files(plain)}  # the store's own check: no .pt/.pth/.bin
    converted = {"optimizer.json", "optimizer.safetensors", "scheduler.json", "rng_state.json", "rng_state.safetensors"}
    copied = {p.name for p in saved.iterdir()} - {"optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin"}
    assert names == converted | copied
    assert not any(zipfile.is_zipfile(path) for path in plain.iterdir())  # torch.save writes zip archives
    optimizer = json.loads((plain / "optimizer.json").read_text())
    assert optimizer["torch_save"] == "optimizer.pt"
    assert optimizer["state"]["param_groups"][0]["betas"] == {"__tuple__": [0.9, 0.999]}
    from safetensors import safe_open

    with safe_open(str(plain / "optimizer.safetensors"), "pt") as tensors:
        assert {"state.0.exp_avg", "state.0.exp_avg_sq", "state.0.step"} <= set(tensors.keys())


def test_a_real_checkpoint_is_rebuilt_exactly(killed, tmp_path):
    import torch

    _, saved, _ = killed
    checkpoint = shutil.copytree(saved, tmp_path / "checkpoint-2")
    shutil.copy(checkpoint / "rng_state.pth", checkpoint / "rng_state_1.pth")  # a second DDP process's RNG
    torch.save(torch.amp.GradScaler("cpu").state_dict(), checkpoint / "scaler.pt")  # fp16 runs save one
    rebuilt = rebuild_checkpoint(write_plain_checkpoint(checkpoint, tmp_path / "plain"), tmp_path / "rebuilt" / "checkpoint-2")
    assert sorted(p.name for p in rebuilt.iterdir()) == sorted(p.name for p in checkpoint.iterdir() if p.name != "training_args.bin")
    for path in checkpoint.iterdir():
        if path.suffix in (".pt", ".pth"):
            assert_same_state(load_torch_saved(path), load_torch_saved(rebuilt / path.name), path.name)
        elif path.name != "training_args.bin":
            assert (rebuilt / path.name).read_bytes() == path.read_bytes(), path.name


def edge_cases():
    import torch

    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    return {
        "a transposed view": {"t": base.t()},
        "one tensor twice": {"a": base, "b": base, "row": base[1]},
        "int keys and tuples": {"state": {0: {"step": torch.tensor(3.0)}, 7: {}}, "betas": (0.9, 0.999)},
        "a numpy array in a tuple": ("MT19937", np.arange(5, dtype=np.uint32), 624, 0, 0.0),
        "bfloat16, empty, 0-dim": [torch.randn(3, dtype=torch.bfloat16), torch.empty(0, 2), torch.tensor(1)],
        "a cuda-style list of states": {"cuda": [torch.ByteTensor([1, 2]), torch.ByteTensor([3])]},
        "non-finite floats and None": {"scale": float("inf"), "x": float("nan"), "foreach": None, "ok": True},
        "keys that look like placeholders": {"__tensor__": 1, "__dict__": [2]},
    }


@pytest.mark.parametrize("name", list(edge_cases()))
def test_states_round_trip_through_json_and_safetensors(name, tmp_path):
    import math

    from safetensors.torch import load_file, save_file

    state = edge_cases()[name]
    tensors: dict = {}
    skeleton = json.loads(json.dumps(split_tensors(state, "", tensors)))
    save_file(tensors, str(tmp_path / "t.safetensors"))
    got = join_tensors(skeleton, load_file(str(tmp_path / "t.safetensors")))
    if name.startswith("non-finite"):  # nan != nan: compare the rest, then nan itself
        assert math.isnan(got.pop("x")) and math.isnan(state.pop("x"))
    assert_same_state(state, got)


@pytest.mark.parametrize(("state", "message"), [
    ({"lr_lambdas": [print]}, "lr_lambdas.0 is a builtin_function_or_method"),
    ({"milestones": {1, 2}}, "milestones is a set"),
    ({"state": {(1, 2): 0.5}}, r"state has keys of type \['tuple'\]"),
    ({"lr": np.float64(0.1)}, "lr is a float64"),
    (OrderedDict(a=1), "the state is a OrderedDict"),
])
def test_a_state_json_cannot_hold_is_named(state, message):
    with pytest.raises(TypeError, match=message):
        split_tensors(state, "", {})


# ---- resuming through S3 ------------------------------------------------------------------------


def test_each_checkpoint_is_published_as_plain_files(killed):
    _, _, published = killed
    base = "moxi/checkpoints/run-a/checkpoint-2"
    assert f"{base}/{MANIFEST}" in published and f"{base}/optimizer.safetensors" in published
    assert f"{base}/moxi_run.json" in published
    assert not [key for key in published if key.endswith((".pt", ".pth", ".bin"))]


def test_resume_from_s3_continues_at_the_step_after_the_checkpoint(resumed):
    result, _, logs = resumed
    assert result.resumed_from_step == 2
    assert [log["step"] for log in logs if "loss" in log] == [3, 4]  # steps 1-2 are not trained again
    assert [step for step, _ in result.losses] == [1, 2, 3, 4]


def test_resumed_from_s3_ends_where_an_uninterrupted_run_ends(resumed, uninterrupted):
    import torch

    _, resumed_dir, _ = resumed
    _, straight_dir = uninterrupted
    expected, got = lora_weights(straight_dir), lora_weights(resumed_dir)
    assert expected.keys() == got.keys()
    # same seed, data order, optimizer and RNG state, rebuilt from JSON + safetensors: the same weights
    assert all(torch.allclose(expected[name], got[name], atol=1e-6) for name in expected)


def test_a_finished_run_removes_its_published_checkpoints(resumed, s3):
    assert object_keys(s3, "moxi/checkpoints/run-a/") == []
    assert not (s3.cache_dir / BUCKET / "moxi/checkpoints/run-a").exists()  # nor the fetched copy


def test_only_the_newest_published_checkpoints_are_kept(killed, s3, tmp_path):
    _, saved, _ = killed
    published = PublishedCheckpoints(s3, "checkpoints/prune")
    fingerprint = tmp_path / "moxi_run.json"
    fingerprint.write_text("{}")
    for step in (2, 4, 6):
        published.publish(shutil.copytree(saved, tmp_path / f"checkpoint-{step}"), fingerprint)
        published.prune(keep=2)
    assert published.names() == ["checkpoint-6", "checkpoint-4"]
    assert not list(tmp_path.glob(".publishing-*"))  # the plain copies are gone


def publish_saved(s3, saved, key: str, name: str, fingerprint: dict, tmp_path) -> None:
    record = tmp_path / f"{name}.json"
    record.write_text(json.dumps(fingerprint))
    PublishedCheckpoints(s3, key).publish(shutil.copytree(saved, tmp_path / key / name), record)


def test_a_published_checkpoint_of_another_config_is_ignored(tiny_model_dir, s3, killed, tmp_path, caplog):
    _, saved, _ = killed
    other = {"config": tiny_config(learning_rate=5e-3).model_dump(mode="json"), "dataset_hash": "h"}
    publish_saved(s3, saved, "checkpoints/run-b", "checkpoint-2", other, tmp_path)
    published = PublishedCheckpoints(s3, "checkpoints/run-b")
    logs: list[dict] = []
    at_step_1: list[list[str]] = []

    def progress(entry: dict) -> None:
        logs.append(entry)
        if entry["step"] == 1:
            at_step_1.append(published.names())

    with caplog.at_level(logging.WARNING, logger="moxi_pipeline.training.checkpoints"):
        result = train_adapter(tiny_model_dir, SAMPLES, [], tiny_config(max_steps=2, save_steps=2), tmp_path / "run-b",
                               "h", progress=progress, checkpoint_store=s3)
    assert result.resumed_from_step == 0
    assert [entry["step"] for entry in logs if "loss" in entry] == [1, 2]
    assert "checkpoints/run-b belong to another config or dataset: deleted, training starts over" in caplog.text
    assert at_step_1 == [[]]  # deleted before training: never taken for this run's own checkpoint-2 later


def test_a_half_uploaded_checkpoint_is_skipped_for_the_complete_one_before_it(
    tiny_model_dir, s3, killed, uninterrupted, tmp_path, caplog
):
    import torch

    _, saved, _ = killed
    from moxi_pipeline.training.train import run_fingerprint

    same = run_fingerprint(CONFIG, "h")
    publish_saved(s3, saved, "checkpoints/run-c", "checkpoint-2", same, tmp_path)
    # checkpoint-4's upload died before its manifest: some files there, no _manifest.json
    s3.client.put_object(Bucket=BUCKET, Key="moxi/checkpoints/run-c/checkpoint-4/trainer_state.json", Body=b"{}")
    logs: list[dict] = []
    with caplog.at_level(logging.WARNING, logger="moxi_pipeline.training.checkpoints"):
        result = train_adapter(tiny_model_dir, SAMPLES, SAMPLES[:2], CONFIG, tmp_path / "run-c", "h",
                               progress=logs.append, checkpoint_store=s3)
    assert f"checkpoints/run-c/checkpoint-4 not used: artifact 's3://{BUCKET}/moxi/checkpoints/run-c/checkpoint-4': " \
           f"no {MANIFEST} there (never published, or an upload that did not finish)" in caplog.text
    assert result.resumed_from_step == 2
    assert [log["step"] for log in logs if "loss" in log] == [3, 4]
    expected, got = lora_weights(uninterrupted[1]), lora_weights(tmp_path / "run-c")
    assert all(torch.allclose(expected[name], got[name], atol=1e-6) for name in expected)


# ---- the store methods that serve checkpoints, on both stores -----------------------------------


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalArtifacts(tmp_path / "data")
    return S3Artifacts(BUCKET, tmp_path / "cache", prefix=f"moxi-{tmp_path.name}", endpoint_url=request.getfixturevalue("s3_endpoint"))


def test_stores_list_and_delete_folders(store, tmp_path):
    for name in ("checkpoint-2", "checkpoint-10"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "trainer_state.json").write_text("{}")
        store.publish(tmp_path / name, f"checkpoints/run/{name}")
    store.fetch(store.uri("checkpoints/run/checkpoint-2"))
    assert store.list_folders("checkpoints/run") == ["checkpoint-10", "checkpoint-2"]
    assert store.list_folders("checkpoints/none") == []
    store.delete("checkpoints/run/checkpoint-2")
    assert store.list_folders("checkpoints/run") == ["checkpoint-10"]
    store.delete("checkpoints/run")
    assert store.list_folders("checkpoints") == []
    if isinstance(store, S3Artifacts):
        assert object_keys(store, store.prefix + "/") == []
        assert not (store.cache_dir / BUCKET / store.prefix / "checkpoints/run/checkpoint-2").exists()


def test_resource_publishes_checkpoints_only_with_a_bucket(tmp_path, s3_endpoint):  # noqa: F811
    from moxi_pipeline.defs.resources import ArtifactsResource

    assert ArtifactsResource(data_dir=str(tmp_path), s3_bucket=None).checkpoint_store() is None
    store = ArtifactsResource(data_dir=str(tmp_path), s3_bucket=BUCKET, aws_endpoint_url=s3_endpoint).checkpoint_store()
    assert isinstance(store, S3Artifacts) and store.bucket == BUCKET


def test_a_killed_dpo_run_resumes_on_another_machine_from_its_published_checkpoint(tiny_model_dir, s3, tmp_path):
    from moxi_pipeline.training.dpo import load_dpo_config, train_dpo
    from moxi_pipeline.training.preferences import PreferencePair
    from moxi_pipeline_tests.export.test_export import save_random_adapter
    from moxi_pipeline_tests.training.test_preferences_dpo import _kill_after_saving, _Killed

    sft = save_random_adapter(tiny_model_dir, tmp_path / "sft")
    pairs = [PreferencePair(f"k{i}", f"https://github.com/o/r{i}", "usage",
                            [{"role": "user", "content": f"Write the Usage section of r{i}."}],
                            f"## Usage\n\nRun `r{i} --help`.", f"Made up {i}.", 0.1) for i in range(4)]
    config = load_dpo_config("demo", max_steps=4, max_length=128, save_steps=2)
    out = tmp_path / "models" / "dpo-run"
    with pytest.raises(_Killed):
        train_dpo(tiny_model_dir, sft, pairs, config, out, callbacks=[_kill_after_saving(2)], checkpoint_store=s3)
    assert any(key.startswith("moxi/checkpoints/dpo_adapter/dpo-run/checkpoint-2/")
               for key in object_keys(s3, "moxi/checkpoints/dpo_adapter/dpo-run/"))
    shutil.rmtree(checkpoint_dir_for(out))  # the machine is gone, and its disk with it
    # the other machine has the same SFT adapter in another folder: the fingerprint is its weights, not its path
    elsewhere = tmp_path / "elsewhere" / "sft"
    shutil.copytree(sft, elsewhere)
    result = train_dpo(tiny_model_dir, elsewhere, pairs, config, out, checkpoint_store=s3)
    assert result.resumed_from_step == 2 and result.steps == 4
    assert [row["step"] for row in result.history] == [1, 2, 3, 4]
    assert object_keys(s3, "moxi/checkpoints/dpo_adapter/dpo-run/") == []  # the finished run removes them
