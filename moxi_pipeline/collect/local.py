"""The `local` source: repositories on disk, and the scan `moxi generate` runs on a repository.

`path` is one repository when it has a README or a `.git` at its root; otherwise each sub-folder
(sorted, hidden ones left out) is taken as a repository.

Walking a repository:
- `.git` is never entered; neither are vendored or generated folders (`SKIPPED_DIRS`: node_modules,
  .venv, venv, __pycache__, tool caches), which are not the project's own files even when a
  .gitignore forgets them.
- `.gitignore` files are honoured at every level, each relative to its own folder. Within one file
  gitignore's rules apply, `!negation` included; between files the deepest one with a matching
  pattern decides, as in git. An ignored folder is not entered, so nothing below it comes back.
- Symlinked folders are not followed (a link to `/` would walk the disk).

README: README.md, README.rst, README.txt or README at the root, any case, first by that order.
repo_url: the `origin` remote in `.git/config`, normalised and without credentials; else
`file://<absolute path>`. repo: the origin's name, else the folder's name. language: by extensions.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pathspec

from moxi_pipeline.collect.key_files import read_key_files
from moxi_pipeline.collect.project_type import detect_project_type, guess_language
from moxi_pipeline.collect.result import Skipped
from moxi_pipeline.collect.urls import normalize_repo_url, owner_and_name
from moxi_pipeline.records import KeyFile, RepoRecord, SampleInput

SKIPPED_DIRS = {
    ".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".nox",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints",
}
README_NAMES = ("readme.md", "readme.rst", "readme.txt", "readme")
# A README is the training target; one bigger than this is a generated API dump, not prose.
MAX_README_BYTES = 1_000_000


@dataclass(frozen=True)
class RepoSnapshot:
    """What Moxi knows about a repository on disk, README or not (the input of `moxi generate`)."""

    root: Path
    repo_url: str
    owner: str
    repo: str
    readme_path: str | None
    file_tree: tuple[str, ...]
    key_files: tuple[KeyFile, ...]
    language: str | None
    project_type: str

    def sample_input(self) -> SampleInput:
        """The model's input for this repository: what `moxi generate` feeds the prompt."""
        return SampleInput(file_tree=self.file_tree, project_type=self.project_type, key_files=self.key_files)


def _ignore_verdict(spec: pathspec.PathSpec, rel_path: str) -> bool | None:
    """True = ignored, False = re-included by `!`, None = no pattern of this file speaks."""
    verdict = None
    for pattern in spec.patterns:
        if pattern.include is not None and pattern.match_file(rel_path):
            verdict = pattern.include
    return verdict


def _is_ignored(specs: list[tuple[str, pathspec.PathSpec]], rel_path: str) -> bool:
    """Deepest .gitignore first: the first one with an opinion decides (git's precedence)."""
    for base, spec in reversed(specs):
        verdict = _ignore_verdict(spec, rel_path[len(base):])
        if verdict is not None:
            return verdict
    return False


def walk_files(root: Path) -> tuple[str, ...]:
    """Every file under `root` as a sorted posix path, honouring .gitignore (module docstring)."""
    files: list[str] = []
    # (prefix, spec) of the .gitignore files above the folder being walked; prefix is "" or "a/b/".
    stack: list[tuple[str, list[tuple[str, pathspec.PathSpec]]]] = [("", [])]
    while stack:
        prefix, specs = stack.pop()
        folder = root / prefix
        gitignore = folder / ".gitignore"
        if gitignore.is_file():
            lines = gitignore.read_text(encoding="utf-8", errors="replace").splitlines()
            specs = specs + [(prefix, pathspec.GitIgnoreSpec.from_lines(lines))]
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                rel_path = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIPPED_DIRS and not _is_ignored(specs, rel_path + "/"):
                        stack.append((rel_path + "/", specs))
                elif not _is_ignored(specs, rel_path):
                    files.append(rel_path)
    return tuple(sorted(files))


def find_readme(file_tree: tuple[str, ...]) -> str | None:
    """The root README by `README_NAMES` order, any case (README.md before README.rst)."""
    by_lower = {path.lower(): path for path in sorted(file_tree) if "/" not in path}
    return next((by_lower[name] for name in README_NAMES if name in by_lower), None)


def _git_config_path(root: Path) -> Path | None:
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git / "config"
    if dot_git.is_file():  # a worktree or submodule: `gitdir: <path>`
        text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
        if text.startswith("gitdir:"):
            git_dir = (root / text.removeprefix("gitdir:").strip()).resolve()
            common = git_dir / "commondir"
            if common.is_file():
                git_dir = (git_dir / common.read_text(encoding="utf-8").strip()).resolve()
            return git_dir / "config"
    return None


def origin_url(root: Path) -> str | None:
    """The `url` of `[remote "origin"]` in the repository's git config, or None."""
    config = _git_config_path(root)
    if config is None or not config.is_file():
        return None
    in_origin = False
    for line in config.read_text(encoding="utf-8", errors="replace").splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            in_origin = re.fullmatch(r'\[remote\s+"origin"\]', stripped) is not None
        elif in_origin and (match := re.match(r"url\s*=\s*(\S+)", stripped)):
            return match.group(1)
    return None


def is_repository(path: Path) -> bool:
    """A folder with a `.git` or a root README counts as one repository."""
    if (path / ".git").exists():
        return True
    return any(entry.is_file() and entry.name.lower() in README_NAMES for entry in path.iterdir())


def scan_repository(path: str | Path) -> RepoSnapshot:
    """File tree, key files, language and project type of one repository; no README needed."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"path {str(path)!r} is not a directory")
    file_tree = walk_files(root)
    key_files = read_key_files(root, file_tree)
    language = guess_language(file_tree)
    origin = origin_url(root)
    repo_url = normalize_repo_url(origin) if origin else root.as_uri()
    owner, name = owner_and_name(repo_url) if origin else ("", root.name)
    return RepoSnapshot(
        root=root, repo_url=repo_url, owner=owner, repo=name or root.name, readme_path=find_readme(file_tree),
        file_tree=file_tree, key_files=key_files, language=language,
        project_type=detect_project_type(file_tree, key_files, language),
    )


def find_repositories(path: str | Path) -> list[Path]:
    """`path` itself when it is a repository, else its non-hidden sub-folders, sorted by name."""
    root = Path(path).expanduser().resolve()
    if is_repository(root):
        return [root]
    return sorted(child for child in root.iterdir() if child.is_dir() and not child.name.startswith("."))


def record_from_repository(path: Path) -> RepoRecord | Skipped:
    snapshot = scan_repository(path)
    if snapshot.readme_path is None:
        return Skipped(str(path), f"no README ({'/'.join(README_NAMES)}, any case) at the root")
    readme_file = snapshot.root / snapshot.readme_path
    size = readme_file.stat().st_size
    if size > MAX_README_BYTES:
        return Skipped(str(path), f"{snapshot.readme_path} is {size} bytes, over {MAX_README_BYTES}")
    readme = readme_file.read_text(encoding="utf-8", errors="replace")
    if not readme.strip():
        return Skipped(str(path), f"{snapshot.readme_path} is empty")
    return RepoRecord(
        repo_url=snapshot.repo_url, owner=snapshot.owner, repo=snapshot.repo, readme=readme,
        file_tree=snapshot.file_tree, key_files=snapshot.key_files, language=snapshot.language,
        project_type=snapshot.project_type, source="local",
    )
