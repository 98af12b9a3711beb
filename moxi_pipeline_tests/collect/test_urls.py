"""Repository URLs: every spelling of one repository is one repository; a local remote names nothing."""

from __future__ import annotations

import pytest

from moxi_pipeline.collect import collect_repos
from moxi_pipeline.collect.urls import normalize_repo_url, owner_and_name, repo_key
from moxi_pipeline_tests.collect.test_collect import README, write


@pytest.mark.parametrize(
    "url, normalized, owner_name",
    [
        ("git@github.com:octo/demo.git", "https://github.com/octo/demo", ("octo", "demo")),
        ("https://tok:x@github.com/octo/demo/", "https://github.com/octo/demo", ("octo", "demo")),
        ("https://github.com/octo/demo/tree/main/docs", "https://github.com/octo/demo", ("octo", "demo")),
        ("ssh://git@gitlab.com/g/p.git", "https://gitlab.com/g/p", ("g", "p")),
        ("https://git.example.org/team/tool.git", "https://git.example.org/team/tool", ("", "tool")),
    ],
)
def test_normalize_repo_url(url, normalized, owner_name):
    assert normalize_repo_url(url) == normalized
    assert owner_and_name(url) == owner_name


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/Octo/Demo", "http://github.com/octo/demo/", "https://www.github.com/octo/demo",
        "git@github.com:OCTO/DEMO.git", "https://github.com/octo/demo.GIT", "github.com/octo/demo",
        " https://GitHub.com/octo/demo#readme ", "git+https://github.com/octo/demo", "git://github.com/Octo/demo.git",
    ],
)
def test_every_spelling_of_one_repository_shares_one_key(url):
    # Rule: GitHub-like hosts ignore the case of owner/name, so the key that dedupes records does too;
    # the URL itself keeps the case it was given (it is shown and titles the README).
    assert repo_key(url) == "https://github.com/octo/demo"
    assert normalize_repo_url(url).lower() == "https://github.com/octo/demo"


def test_key_keeps_case_off_repository_hosts():
    assert repo_key("https://git.example.org/Team/Tool.git") == "https://git.example.org/Team/Tool"
    assert repo_key("file:///src/Repo") == "file:///src/Repo"


@pytest.mark.parametrize("origin", ["/srv/src/repo", "../repo", "file:///srv/src/repo", "/srv/src/repo/.git"])
def test_local_clone_of_a_local_folder_is_named_by_its_own_folder(tmp_path, origin):
    # Three clones of different projects, each cloned from a folder named `repo`, were all called `repo`.
    for name in ("alpha", "beta"):
        write(tmp_path / name, {"README.md": README, ".git/config": f'[remote "origin"]\n\turl = {origin}\n'})
    result = collect_repos("local", str(tmp_path))
    assert [(r.repo, r.owner, r.repo_url) for r in result.records] == [
        ("alpha", "", (tmp_path / "alpha").as_uri()), ("beta", "", (tmp_path / "beta").as_uri())]


def test_local_network_remote_off_repository_hosts_names_the_repository(tmp_path):
    write(tmp_path / "checkout", {"README.md": README, ".git/config": '[remote "origin"]\n\turl = ssh://git@git.example.org/team/tool.git\n'})
    (record,) = collect_repos("local", str(tmp_path / "checkout")).records
    assert (record.repo, record.owner, record.repo_url) == ("tool", "", "https://git.example.org/team/tool")
