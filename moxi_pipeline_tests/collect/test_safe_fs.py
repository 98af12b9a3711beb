"""Reading a repository never leaves it: links are listed as links, FIFOs and devices are never read.

Examples of the rule `test_reliability.test_no_read_leaves_the_repository_root` checks on generated trees.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from moxi_pipeline.collect import collect_repos, scan_repository
from moxi_pipeline.collect.local_repos import MAX_README_BYTES
from moxi_pipeline.collect.safe_fs import RefusedRead, read_head
from moxi_pipeline_tests.collect.test_collect import README, write


@pytest.fixture
def secret(tmp_path) -> Path:
    """A folder outside every repository of the test, holding what must never be read."""
    outside = write(tmp_path / "outside", {"token.txt": "SECRET-TOKEN\n", "dir/Makefile": "SECRET-MAKE\n",
                                           "gitdir/config": '[remote "origin"]\n\turl = https://github.com/leak/leak\n'})
    return outside


def test_symlinks_are_listed_as_links_and_never_read_outside(tmp_path, secret):
    # A key file `Makefile -> /some/secret` came back with the secret's content, and a linked folder was listed.
    repo = write(tmp_path / "repo", {"README.md": README, "main.py": "print(1)\n", "docs/guide.md": "guide\n"})
    (repo / "Makefile").symlink_to(secret / "token.txt")
    (repo / "setup.py").symlink_to(repo / "main.py")  # inside the repository, but a link all the same
    (repo / "vendor").symlink_to(secret / "dir")
    (repo / "everything").symlink_to("/")
    snapshot = scan_repository(repo)
    assert snapshot.file_tree == ("Makefile@", "README.md", "docs/guide.md", "everything@", "main.py", "setup.py@", "vendor@")
    assert [k.path for k in snapshot.key_files] == ["main.py"]
    assert "SECRET" not in json.dumps([k.to_dict() for k in snapshot.key_files])


def test_readme_link_inside_is_read_and_outside_is_skipped(tmp_path, secret):
    inside = write(tmp_path / "inside", {"docs/README.md": README})
    (inside / "README.md").symlink_to("docs/README.md")
    outside = write(tmp_path / "outside_link", {"main.py": ""})
    (outside / "README.md").symlink_to(secret / "token.txt")
    result = collect_repos("local", str(tmp_path / "inside"))
    assert [r.readme for r in result.records] == [README]
    result = collect_repos("local", str(outside))
    assert result.records == []
    assert [s.reason for s in result.skipped] == ["README not read: README.md resolves outside the repository"]


def test_fifo_and_oversized_readme_are_skipped_without_blocking(tmp_path):
    fifo_repo = write(tmp_path / "fifo", {"main.py": ""})
    os.mkfifo(fifo_repo / "README.md")  # a read would wait forever for a writer
    os.mkfifo(fifo_repo / "setup.py")
    big = write(tmp_path / "big", {"main.py": ""})
    with open(big / "README.md", "wb") as handle:
        handle.truncate(MAX_README_BYTES + 1)
    result = collect_repos("local", str(tmp_path))
    assert [(Path(s.item).name, s.reason) for s in result.skipped] == [
        ("big", f"README.md is over {MAX_README_BYTES} bytes"), ("fifo", "README not read: README.md is a FIFO")]


def test_git_metadata_outside_the_repository_is_not_followed(tmp_path, secret):
    linked = write(tmp_path / "linked", {"README.md": README})
    (linked / ".git").symlink_to(secret / "gitdir")
    worktree = write(tmp_path / "worktree", {"README.md": README, ".git": f"gitdir: {secret / 'gitdir'}\n"})
    inside = write(tmp_path / "inside", {"README.md": README, ".git": "gitdir: .realgit\n",
                                         ".realgit/config": '[remote "origin"]\n\turl = git@github.com:o/inside.git\n'})
    names = [(r.repo, r.repo_url.split("/")[2] or "file") for r in collect_repos("local", str(tmp_path)).records]
    assert names == [("inside", "github.com"), ("linked", "file"), ("worktree", "file")]


def test_linked_repository_in_a_folder_of_them_is_skipped(tmp_path, secret):
    write(tmp_path / "repos" / "real", {"README.md": README})
    write(secret / "project", {"README.md": "SECRET README\n"})
    (tmp_path / "repos" / "elsewhere").symlink_to(secret / "project")
    result = collect_repos("local", str(tmp_path / "repos"))
    assert [r.repo for r in result.records] == ["real"]
    assert [(Path(s.item).name, s.reason) for s in result.skipped] == [
        ("elsewhere", "a symbolic link to a folder; links are not followed")]


def test_non_utf8_names_are_listed_with_replacement_characters(tmp_path):
    repo = write(tmp_path / "repo", {"README.md": README})
    (Path(os.fsdecode(os.path.join(os.fsencode(repo), b"caf\xe9.py")))).write_text("x = 1\n")
    (record,) = collect_repos("local", str(repo)).records
    assert record.file_tree == ("README.md", "caf\ufffd.py")


def test_read_head_caps_the_read_and_refuses_what_is_not_a_regular_file(tmp_path):
    root = write(tmp_path / "repo", {"big.txt": "x" * 10_000})
    os.mkfifo(root / "pipe")
    (root / "null").symlink_to("/dev/null")
    assert read_head(root, "big.txt", 100) == b"x" * 100
    with pytest.raises(RefusedRead, match="pipe is a FIFO"):
        read_head(root, "pipe", 100)
    with pytest.raises(RefusedRead, match="null resolves outside the repository"):
        read_head(root, "null", 100)
    (root / "sub").mkdir()
    with pytest.raises(RefusedRead, match="sub is a folder"):
        read_head(root, "sub", 100)
    with pytest.raises(FileNotFoundError):
        read_head(root, "missing.txt", 100)
