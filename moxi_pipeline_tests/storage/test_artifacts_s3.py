"""The artifact store: folders round-trip through local folders and through S3 (moto's server, real HTTP)."""

from __future__ import annotations

import json

import pytest

from moxi_pipeline.storage.artifacts import (
    MANIFEST,
    LocalArtifacts,
    S3Artifacts,
    artifact_store,
    parse_s3_uri,
)
from moxi_pipeline_tests.s3_server import FAKE_KEYS, moto_s3_server

BUCKET = "moxi-test"


def make_adapter_dir(path, weights: bytes = b"\x00\x01safetensors-bytes\xff"):
    """The files a trained adapter folder holds, one of them in a subfolder, binary and text."""
    path.mkdir(parents=True)
    (path / "adapter_model.safetensors").write_bytes(weights)
    (path / "adapter_config.json").write_text(json.dumps({"r": 16, "base_model_name_or_path": "base"}))
    (path / "README.md").write_text("# Moxi adapter\n\nUnicode survives: é ✓\n")
    (path / "tb").mkdir()
    (path / "tb" / "events.json").write_text("{}")
    return path


def tree(path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def s3_endpoint():
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in FAKE_KEYS.items():
            monkeypatch.setenv(name, value)
        with moto_s3_server() as endpoint:
            import boto3

            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
            yield endpoint


@pytest.fixture()
def s3_store(s3_endpoint, tmp_path):
    return S3Artifacts(BUCKET, tmp_path / "cache", prefix="moxi", endpoint_url=s3_endpoint)


def object_keys(store: S3Artifacts, prefix: str) -> list[str]:
    listing = store.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


# ---- S3 on the moto server -------------------------------------------------------------------


def test_s3_adapter_dir_round_trips_byte_for_byte(s3_store, tmp_path):
    source = make_adapter_dir(tmp_path / "run1")
    uri = s3_store.publish(source, "models/lora_adapter/run1")
    assert uri == f"s3://{BUCKET}/moxi/models/lora_adapter/run1"
    assert object_keys(s3_store, "moxi/models/lora_adapter/run1/") == [
        f"moxi/models/lora_adapter/run1/{name}"
        for name in ("README.md", MANIFEST, "adapter_config.json", "adapter_model.safetensors", "tb/events.json")
    ]
    fetched = s3_store.fetch(uri)
    assert fetched == tmp_path / "cache" / BUCKET / "moxi/models/lora_adapter/run1"
    assert tree(fetched) == tree(source)


def test_s3_fetch_keeps_intact_files_and_replaces_damaged_ones(s3_store, tmp_path):
    uri = s3_store.publish(make_adapter_dir(tmp_path / "run2"), "models/lora_adapter/run2")
    fetched = s3_store.fetch(uri)
    config = fetched / "adapter_config.json"
    before = config.stat().st_mtime_ns
    (fetched / "adapter_model.safetensors").write_bytes(b"truncated")
    s3_store.fetch(uri)
    assert config.stat().st_mtime_ns == before  # intact: not downloaded again
    assert (fetched / "adapter_model.safetensors").read_bytes() == b"\x00\x01safetensors-bytes\xff"


def test_s3_publish_refuses_pickles_before_uploading_anything(s3_store, tmp_path):
    source = make_adapter_dir(tmp_path / "run3")
    (source / "training_args.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(ValueError, match=r"pickle files \['training_args.bin'\]"):
        s3_store.publish(source, "models/lora_adapter/run3")
    assert object_keys(s3_store, "moxi/models/lora_adapter/run3/") == []


def test_s3_folder_without_manifest_is_an_unfinished_upload(s3_store, tmp_path):
    s3_store.client.put_object(Bucket=BUCKET, Key="moxi/half/adapter_config.json", Body=b"{}")
    with pytest.raises(ValueError, match=rf"no {MANIFEST} there \(never published, or an upload that did not finish\)"):
        s3_store.fetch(f"s3://{BUCKET}/moxi/half")


def test_s3_missing_bucket_is_one_clear_error(s3_store):
    with pytest.raises(ValueError, match=r"artifact 's3://no-such-bucket/x': .*NoSuchBucket") as error:
        s3_store.fetch("s3://no-such-bucket/x")
    assert FAKE_KEYS["AWS_SECRET_ACCESS_KEY"] not in str(error.value)


def test_s3_store_is_chosen_by_the_bucket_setting(s3_endpoint, tmp_path):
    assert isinstance(artifact_store(tmp_path), LocalArtifacts)
    store = artifact_store(tmp_path, s3_bucket=BUCKET, endpoint_url=s3_endpoint)
    assert isinstance(store, S3Artifacts) and store.cache_dir == tmp_path / "cache" / "s3"
    uri = store.publish(make_adapter_dir(tmp_path / "run4"), "reports/run4")
    fresh = S3Artifacts(BUCKET, tmp_path / "elsewhere" / "cache" / "s3", endpoint_url=s3_endpoint)  # another machine's cache
    assert tree(fresh.fetch(uri)) == tree(tmp_path / "run4")


def test_generate_resolves_an_s3_adapter(s3_store, tmp_path):
    from moxi_pipeline.models.writer import resolve_adapter

    uri = s3_store.publish(make_adapter_dir(tmp_path / "run5"), "models/lora_adapter/run5")
    path = resolve_adapter(uri, tmp_path / "adapters", cache_dir=tmp_path / "c", endpoint_url=s3_store.client.meta.endpoint_url)
    assert path == tmp_path / "c" / BUCKET / "moxi/models/lora_adapter/run5"
    assert (path / "adapter_config.json").is_file()


def test_moxi_generate_with_an_s3_adapter(s3_endpoint, tmp_path, monkeypatch, tiny_model_dir, capsys):
    """`moxi generate --adapter s3://...`: fetched into data/cache/s3, the local base model under it."""
    import shutil

    from moxi_pipeline.cli import main
    from moxi_pipeline_tests.test_cli import _repo, _train_latest

    trained = tmp_path / "trained"
    _train_latest(trained, tiny_model_dir)
    store = S3Artifacts(BUCKET, tmp_path / "unused", endpoint_url=s3_endpoint)
    uri = store.publish(trained / "models" / "lora_adapter" / "run1", "models/lora_adapter/cli-run")
    data_dir = tmp_path / "data"
    shutil.copytree(tiny_model_dir, data_dir / "models" / "base_model")
    monkeypatch.setenv("MOXI_DATA_DIR", str(data_dir))
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    out = tmp_path / "README.generated.md"
    assert main(["generate", str(_repo(tmp_path)), "--adapter", uri, "--out", str(out), "--device", "cpu"]) == 0
    assert out.read_text().startswith("# renamer\n")
    assert (data_dir / "cache" / "s3" / BUCKET / "moxi/models/lora_adapter/cli-run" / "adapter_model.safetensors").is_file()


def test_moxi_generate_with_a_missing_s3_adapter_says_so(s3_endpoint, tmp_path, monkeypatch, capsys):
    from moxi_pipeline.cli import main

    monkeypatch.setenv("MOXI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    (tmp_path / "repo").mkdir()
    assert main(["generate", str(tmp_path / "repo"), "--adapter", f"s3://{BUCKET}/nothing/here"]) == 2
    assert f"moxi: artifact 's3://{BUCKET}/nothing/here': no {MANIFEST} there" in capsys.readouterr().err


# ---- local folders, the default --------------------------------------------------------------


def test_local_publish_copies_into_the_store_and_fetch_returns_it(tmp_path):
    store = LocalArtifacts(tmp_path / "data")
    source = make_adapter_dir(tmp_path / "work")
    uri = store.publish(source, "models/lora_adapter/run1")
    assert uri == str(tmp_path / "data" / "models/lora_adapter/run1")
    assert tree(store.fetch(uri)) == tree(source)
    assert store.publish(uri, "models/lora_adapter/run1") == uri  # already in place: nothing copied


def test_local_publish_refuses_pickles(tmp_path):
    source = make_adapter_dir(tmp_path / "work")
    (source / "optimizer.pt").write_bytes(b"PK")
    with pytest.raises(ValueError, match=r"pickle files \['optimizer.pt'\]"):
        LocalArtifacts(tmp_path / "data").publish(source, "x")
    assert not (tmp_path / "data" / "x").exists()


@pytest.mark.parametrize("key", ["", "/", "a/../b", "a//b", "./a"])
def test_bad_keys_are_refused(tmp_path, key):
    with pytest.raises(ValueError, match="must be a relative path"):
        LocalArtifacts(tmp_path).uri(key)


@pytest.mark.parametrize("uri", ["s3://", "s3://bucket", "s3://bucket/", "http://bucket/key", "bucket/key"])
def test_bad_s3_uris_are_refused(uri):
    with pytest.raises(ValueError, match="is not an S3 URI"):
        parse_s3_uri(uri)


def test_s3_sft_dataset_is_published_with_its_uri_in_metadata(s3_endpoint, tmp_path, monkeypatch):
    import dagster as dg

    from moxi_pipeline.defs import dataset as dataset_defs
    from moxi_pipeline.defs.dataset import SftDatasetConfig, sft_dataset
    from moxi_pipeline.defs.resources import ArtifactsResource, OpenAIClient
    from moxi_pipeline_tests.defs.test_definitions import _sample

    samples = [_sample("train", "## Usage\n\nRun it with care, it renames files."), _sample("test")]
    monkeypatch.setattr(dataset_defs, "build_sft_dataset", lambda records, chunks, config, progress: samples)
    context = dg.build_asset_context()
    artifacts = ArtifactsResource(data_dir=str(tmp_path), s3_bucket=BUCKET, aws_endpoint_url=s3_endpoint)
    sft_dataset(context=context, config=SftDatasetConfig(), artifacts=artifacts, openai=OpenAIClient(api_key=""),
                raw_readmes=[], readme_chunks=[])
    uri = context.get_output_metadata("result")["dataset_uri"]
    assert uri.startswith(f"s3://{BUCKET}/moxi/datasets/sft/")
    store = S3Artifacts(BUCKET, tmp_path / "cache", prefix="moxi", endpoint_url=s3_endpoint)
    key = uri.removeprefix(f"s3://{BUCKET}/")
    keys = object_keys(store, key)
    assert f"{key}/training_dataset.json" in keys and f"{key}/README.md" in keys
    fetched = store.fetch(uri)
    assert json.loads((fetched / "training_dataset.json").read_text()) == json.loads(
        (tmp_path / "sft" / "training_dataset.json").read_text())


@pytest.mark.parametrize("uri", [f"s3://{BUCKET}/moxi/../../../escape", f"s3://{BUCKET}/a/./b", "s3://../moxi/x",
                                 f"s3://{BUCKET}/moxi//x"])
def test_s3_fetch_of_a_key_with_dot_parts_writes_nothing_outside_the_cache(s3_store, tmp_path, uri):
    # the bucket's contents are untrusted: a key holding '..' must not land beside data/cache/s3
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if bucket == BUCKET:
        s3_store.client.put_object(Bucket=BUCKET, Key=f"{key}/{MANIFEST}",
                                   Body=json.dumps({"files": {"x.txt": {"size": 1, "sha256": "0" * 64}}}).encode())
        s3_store.client.put_object(Bucket=BUCKET, Key=f"{key}/x.txt", Body=b"x")
    with pytest.raises(ValueError, match="outside the cache"):
        s3_store.fetch(uri)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written anywhere under tmp_path, the cache included


@pytest.mark.parametrize("manifest", [[], {"files": ["a"]}, {"files": {"a": 5}}, {"files": {"a": {"size": 1}}}])
def test_s3_fetch_of_a_manifest_of_another_shape_is_one_clear_error(s3_store, manifest):
    s3_store.client.put_object(Bucket=BUCKET, Key=f"moxi/odd/{MANIFEST}", Body=json.dumps(manifest).encode())
    with pytest.raises(ValueError, match=rf"artifact 's3://{BUCKET}/moxi/odd': {MANIFEST} is not"):
        s3_store.fetch(f"s3://{BUCKET}/moxi/odd")
