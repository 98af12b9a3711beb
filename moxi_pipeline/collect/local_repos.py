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
- A symlink is listed as a link, `path@` (as `ls -F` marks one), and never followed: a linked
  folder shows as one entry with nothing below it (a link to `/` would walk the disk), and a linked
  file is no key file. The README may be a link to a file inside the repository.
- A name that is not UTF-8 is listed with U+FFFD for its bad bytes, and such a file is never read.
- Every read goes through `safe_fs.read_head`: never outside the root (links resolved), never a
  FIFO or device, never more than a cap. That holds for git metadata too: a worktree's or
  submodule's `.git` file that points outside the repository is not followed, so such a checkout is
  named like a repository without a remote.

README: README.md, README.rst, README.txt or README at the root, any case, first by that order; over
`MAX_README_BYTES` it is skipped.
Name: a network `origin` remote (https, ssh, `git@host:o/r`) gives repo_url, normalised and without
credentials, and owner/name (owner only on GitHub-like hosts). Without one, or when origin is a local
path or file:// URL (a clone of a clone), repo_url is `file://<absolute path>`, owner is "" and the
name is the folder's: the remote's folder says nothing about this project. language: by extensions.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pathspec

from moxi_pipeline.collect.key_files import read_key_files, read_text_head
from moxi_pipeline.collect.project_type import detect_project_type, guess_language
from moxi_pipeline.collect.result import Skipped
from moxi_pipeline.collect.safe_fs import RefusedRead, is_inside, read_head
from moxi_pipeline.collect.urls import (
    is_network_url,
    normalize_repo_url,
    owner_and_name,
)
from moxi_pipeline.records import KeyFile, RepoRecord, SampleInput

SKIPPED_DIRS = {
    ".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".nox",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints",
}
README_NAMES = ("readme.md", "readme.rst", "readme.txt", "readme")
# A README is the training target; one bigger than this is a generated API dump, not prose.
MAX_README_BYTES = 1_000_000
MAX_LICENSE_CHARS = 40_000  # the longest common license (GPL-3.0) is ~35k characters
MAX_GITIGNORE_BYTES = 256_000  # a .gitignore is a few KB; anything bigger is not one to honour in full
MAX_GIT_CONFIG_BYTES = 64_000
LINK_MARKER = "@"  # `docs@` in a file tree is a symlink, as `ls -F` shows one


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
    license: str | None = None  # SPDX id of the root LICENSE file's text, when identify recognises it

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


def _shown(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (surrogate-escaped by os) become U+FFFD."""
    return os.fsencode(name).decode("utf-8", errors="replace")


def _gitignore_spec(root: Path, rel_folder: str) -> pathspec.PathSpec | None:
    try:
        head = read_head(root, rel_folder + ".gitignore", MAX_GITIGNORE_BYTES)
    except (FileNotFoundError, RefusedRead):  # none, or a link out of the repository, a FIFO: no rules
        return None
    return pathspec.GitIgnoreSpec.from_lines(head.decode("utf-8", errors="replace").splitlines())


def walk_files(root: Path) -> tuple[str, ...]:
    """Every file under `root` as a sorted posix path, symlinks as `path@`, honouring .gitignore (module doc)."""
    root = Path(root).resolve()
    files: list[str] = []
    # (folder on disk, its shown prefix, the .gitignore specs above it); folders are "" or "a/b/".
    stack: list[tuple[str, str, list[tuple[str, pathspec.PathSpec]]]] = [("", "", [])]
    while stack:
        rel_folder, prefix, specs = stack.pop()
        if not is_inside(root, root / rel_folder):  # swapped for a link after it was listed
            continue
        spec = _gitignore_spec(root, rel_folder)
        specs = specs + [(prefix, spec)] if spec is not None else specs
        with os.scandir(root / rel_folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                shown = prefix + _shown(entry.name)
                if entry.is_symlink():
                    if not _is_ignored(specs, shown):
                        files.append(shown + LINK_MARKER)
                elif entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIPPED_DIRS and not _is_ignored(specs, shown + "/"):
                        stack.append((rel_folder + entry.name + "/", shown + "/", specs))
                elif not _is_ignored(specs, shown):
                    files.append(shown)
    return tuple(sorted(files))


def find_readme(file_tree: tuple[str, ...]) -> str | None:
    """The root README by `README_NAMES` order, any case (README.md before README.rst); a link counts."""
    by_lower = {}
    for path in sorted(file_tree):
        plain = path.removesuffix(LINK_MARKER)
        if "/" not in plain:
            by_lower.setdefault(plain.lower(), plain)
    return next((by_lower[name] for name in README_NAMES if name in by_lower), None)


def _read_git_text(root: Path, rel_path: str) -> str | None:
    try:
        return read_head(root, rel_path, MAX_GIT_CONFIG_BYTES).decode("utf-8", errors="replace")
    except OSError:  # missing, a folder, or outside the repository (module docstring)
        return None


def _git_config_text(root: Path) -> str | None:
    """The repository's git config, read only from inside `root`, or None."""
    config = _read_git_text(root, ".git/config")
    dot_git = _read_git_text(root, ".git") if config is None else None
    if dot_git is None or not dot_git.strip().startswith("gitdir:"):  # a worktree or submodule: `gitdir: <path>`
        return config
    git_dir = os.path.realpath(root / dot_git.strip().removeprefix("gitdir:").strip())
    if not is_inside(root, git_dir):
        return None
    git_dir = os.path.relpath(git_dir, root)
    common = _read_git_text(root, f"{git_dir}/commondir")
    if common is not None:
        common_dir = os.path.realpath(root / git_dir / common.strip())
        git_dir = os.path.relpath(common_dir, root) if is_inside(root, common_dir) else None
    return _read_git_text(root, f"{git_dir}/config") if git_dir is not None else None


def origin_url(root: Path) -> str | None:
    """The `url` of `[remote "origin"]` in the repository's git config, or None."""
    config = _git_config_text(Path(root).resolve())
    if config is None:
        return None
    in_origin = False
    for line in config.splitlines():
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
    if origin and is_network_url(origin):
        repo_url = normalize_repo_url(origin)
        owner, name = owner_and_name(repo_url)
    else:  # no remote, or a local one: its folder name says nothing about this project (module doc)
        repo_url, owner, name = root.as_uri(), "", root.name
    return RepoSnapshot(
        root=root, repo_url=repo_url, owner=owner, repo=name or root.name, readme_path=find_readme(file_tree),
        file_tree=file_tree, key_files=key_files, language=language,
        project_type=detect_project_type(file_tree, key_files, language), license=detect_license(root, file_tree),
    )


def detect_license(root: Path, file_tree: tuple[str, ...]) -> str | None:
    """The SPDX id of the root LICENSE/COPYING file, read safely (capped, never through a link)."""
    from moxi_pipeline.collect.licenses import license_file, spdx_from_text

    path = license_file(file_tree)
    text = read_text_head(root, path, MAX_LICENSE_CHARS) if path else None
    return spdx_from_text(text) if text else None


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
    try:
        head = read_head(snapshot.root, snapshot.readme_path, MAX_README_BYTES + 1)
    except RefusedRead as refused:
        return Skipped(str(path), f"README not read: {refused}")
    if len(head) > MAX_README_BYTES:
        return Skipped(str(path), f"{snapshot.readme_path} is over {MAX_README_BYTES} bytes")
    readme = head.decode("utf-8", errors="replace")
    if not readme.strip():
        return Skipped(str(path), f"{snapshot.readme_path} is empty")
    return RepoRecord(
        repo_url=snapshot.repo_url, owner=snapshot.owner, repo=snapshot.repo, readme=readme,
        file_tree=snapshot.file_tree, key_files=snapshot.key_files, language=snapshot.language,
        project_type=snapshot.project_type, source="local", license=snapshot.license,
    )
