"""The page's work without a browser: inputs (folder, .zip), model choices, and a message for every bad input."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import pytest

from moxi_pipeline.settings import Settings
from moxi_pipeline.web import inputs
from moxi_pipeline.web.app import write_for_page
from moxi_pipeline.web.choices import TEMPLATE_LABEL, list_models
from moxi_pipeline_tests.readme.test_complete import make_renamer


@pytest.fixture()
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", _env_file=None)


def _zip(path, members: dict[str, bytes], links: dict[str, str] = {}):  # noqa: B006 (read only)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
        for name, target in links.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            bundle.writestr(info, target)
    return path


def test_a_zip_with_one_top_folder_unpacks_to_it(tmp_path):
    archive = _zip(tmp_path / "r.zip", {"renamer/pyproject.toml": b'[project]\nname = "renamer"\n', "renamer/README.md": b"# r\n"})
    root = inputs.unpack_zip(archive, tmp_path / "out")
    assert root == (tmp_path / "out" / "renamer").resolve() and (root / "README.md").read_text() == "# r\n"


@pytest.mark.parametrize(("members", "links", "message"), [
    ({"../evil.txt": b"x"}, {}, "'../evil.txt' has an absolute or climbing path"),
    ({"/etc/evil": b"x"}, {}, "'/etc/evil' has an absolute or climbing path"),
    ({"a.txt": b"x"}, {"docs": "/etc"}, "'docs' is a symbolic link"),
    ({"bomb.txt": b"\0" * 5_000_000}, {}, "'bomb.txt' inflates"),
    ({}, {}, "the .zip is empty"),
])
def test_a_hostile_zip_is_refused_by_name(tmp_path, members, links, message):
    archive = _zip(tmp_path / "r.zip", members, links)
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        inputs.unpack_zip(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_a_zip_over_the_unpacked_cap_is_refused_before_a_byte_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "MAX_UNPACKED_BYTES", 1000)
    archive = _zip(tmp_path / "r.zip", {"a.txt": b"x" * 600, "b.txt": b"y" * 600})
    with pytest.raises(ValueError, match="would unpack to 1,200 bytes"):
        inputs.unpack_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_not_a_zip(tmp_path):
    (tmp_path / "r.zip").write_text("hello")
    with pytest.raises(ValueError, match="r.zip is not a .zip archive"):
        inputs.unpack_zip(tmp_path / "r.zip", tmp_path / "out")


@pytest.mark.parametrize(("location", "message"), [
    ("", "give a folder on the server, a GitHub URL, or upload a .zip"),
    ("/no/such/folder", "'/no/such/folder' does not exist or is not a folder on the server"),
    ("https://gitlab.com/", "is not a GitHub repository URL"),
])
def test_bad_input_is_a_message_on_the_page(settings, location, message):
    result = write_for_page(location, None, TEMPLATE_LABEL, False, settings)
    assert result.status.startswith("**Could not write a README:**") and message in result.status
    assert result.readme == "" and result.download is None


def test_a_private_or_missing_github_repository_is_a_message(tmp_path):
    from moxi_pipeline_tests.fake_github import FakeGitHub

    with FakeGitHub({}) as fake:
        settings = Settings(data_dir=tmp_path / "data", github_api_url=fake.url, _env_file=None)
        result = write_for_page("https://github.com/o/private", None, TEMPLATE_LABEL, False, settings)
    assert result.status == ("**Could not write a README:** https://github.com/o/private: head commit: not found (404): "
                             "deleted, renamed away or private")


def test_an_empty_repository_and_a_missing_readme_are_messages(tmp_path, settings):
    (tmp_path / "empty").mkdir()
    assert "is an empty repository" in write_for_page(str(tmp_path / "empty"), None, TEMPLATE_LABEL, False, settings).status
    repo = make_renamer(tmp_path / "renamer")
    assert "renamer has no README to complete" in write_for_page(str(repo), None, TEMPLATE_LABEL, True, settings).status


def test_completion_from_an_uploaded_zip_keeps_the_readme_and_diffs_it(tmp_path, settings):
    repo = make_renamer(tmp_path / "renamer")
    (repo / "README.md").write_text("# renamer\n\nMine.\n")
    archive = tmp_path / "renamer.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(repo.rglob("*")):
            if path.is_file():
                bundle.write(path, path.relative_to(tmp_path).as_posix())
    result = write_for_page("", str(archive), TEMPLATE_LABEL, True, settings)
    assert result.status.startswith("Completed the README of **renamer**")
    assert result.readme.startswith("# renamer\n\nMine.\n\n## Built With")
    assert result.diff.startswith("--- README.md (yours)\n+++ README.md (completed)\n@@ -1,3 +1,")
    assert "| install | pip install renamer |" in result.facts and "| frameworks | Click |" in result.facts
    assert Path(result.download).read_text(encoding="utf-8") == result.readme


def test_model_choices_show_an_evaluated_adapters_headline(settings):
    adapter = settings.adapters_dir / "run1"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    (settings.adapters_dir / "run2").mkdir()
    (settings.adapters_dir / "run2" / "adapter_config.json").write_text("{}")
    run = settings.data_dir / "eval" / "runs" / "e1"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"adapter_dir": str(adapter), "systems": {
        "fine_tuned": {"rougeL": 0.2134, "eval_loss": 2.5}}}))
    labels = [choice.label for choice in list_models(settings)]
    assert labels[0] == TEMPLATE_LABEL
    assert "adapter run1 (ROUGE-L 0.213, eval loss 2.50)" in labels and "adapter run2 (not evaluated)" in labels
