"""A checkpoint rebuilt from a bucket writes only the Trainer's own file names, inside its own folder."""

from __future__ import annotations

import json

import pytest

from moxi_pipeline.storage.artifacts import S3Artifacts
from moxi_pipeline.training.checkpoints import rebuild_checkpoint
from moxi_pipeline_tests.storage.test_artifacts_s3 import BUCKET, s3_endpoint  # noqa: F401 (fixture)


def _published_plain_checkpoint(s3_endpoint, tmp_path, torch_save: str, stem: str = "optimizer"):  # noqa: F811
    """A plain checkpoint in moto's bucket whose JSON names `torch_save`, fetched back as training would."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / f"{stem}.json").write_text(json.dumps({"torch_save": torch_save, "state": {"step": 3}}))
    (plain / "trainer_state.json").write_text("{}")
    store = S3Artifacts(BUCKET, tmp_path / "cache", endpoint_url=s3_endpoint)
    return store.fetch(store.publish(plain, f"checkpoints/run/{stem}-{abs(hash(torch_save))}"))


@pytest.mark.parametrize("torch_save", ["../../y.pt", "/tmp/moxi-escape-y.pt", "optimizer.pt/../../../y.pt",
                                        "sub/optimizer.pt", "optimizer.bin", "evil.pt", 5, None])
def test_a_torch_save_name_from_the_bucket_that_is_not_a_trainer_file_is_refused(s3_endpoint, tmp_path, torch_save):  # noqa: F811
    fetched = _published_plain_checkpoint(s3_endpoint, tmp_path, torch_save)
    target = tmp_path / "out" / "checkpoint-3"
    with pytest.raises(ValueError, match=r"optimizer\.json: torch_save=.* is not a checkpoint file name"):
        rebuild_checkpoint(fetched, target)
    written = {p.name for p in tmp_path.rglob("*.pt")} | {p.name for p in tmp_path.parent.glob("*.pt")}
    assert written == set() and not target.exists()


def test_a_trainer_file_name_is_rebuilt_inside_the_checkpoint(s3_endpoint, tmp_path):  # noqa: F811
    import torch

    fetched = _published_plain_checkpoint(s3_endpoint, tmp_path, "rng_state_1.pth", stem="rng_state_1")
    checkpoint = rebuild_checkpoint(fetched, tmp_path / "out" / "checkpoint-3")
    assert sorted(p.name for p in checkpoint.iterdir()) == ["rng_state_1.pth", "trainer_state.json"]
    assert torch.load(checkpoint / "rng_state_1.pth", weights_only=True) == {"step": 3}


# --- `python -m moxi_pipeline.training.train --dataset FILE` reads JSON Lines as the store writes them -----------

def test_train_main_reads_a_dataset_row_holding_u2028(tmp_path, monkeypatch):
    from moxi_pipeline.records import SampleInput, SftSample
    from moxi_pipeline.storage import LocalStore
    from moxi_pipeline.training import train

    sample = SftSample(instruction="Write a README", input=SampleInput(file_tree=("a.py",), project_type="python_library"),
                       content="line\u2028separated", repo_url="https://github.com/o/r", repo="r", kind="readme", split="train")
    path = LocalStore(tmp_path).write_records("sft_dataset", [sample.to_dict()])
    seen = []

    def fake_train_adapter(base_model, train_samples, *args, **kwargs):
        seen.extend(train_samples)
        raise SystemExit(0)

    monkeypatch.setattr(train, "train_adapter", fake_train_adapter)
    with pytest.raises(SystemExit):
        train.main(["--profile", "demo", "--base-model", "m", "--dataset", str(path), "--out", str(tmp_path / "a")])
    assert seen == [sample]


def test_train_main_names_the_file_and_line_of_a_bad_row(tmp_path, capsys):
    from moxi_pipeline.training import train

    path = tmp_path / "d.jsonl"
    path.write_text('\n{"instruction": "x"}\n')
    with pytest.raises(SystemExit) as exit_:
        train.main(["--profile", "demo", "--base-model", "m", "--dataset", str(path), "--out", str(tmp_path / "a")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith(f"moxi train: {path} line 2: not an SFT sample (Field required)")
