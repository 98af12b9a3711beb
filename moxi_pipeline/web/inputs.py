"""The page's inputs as a repository: a folder on the server, a GitHub URL, or an uploaded .zip.

An upload is untrusted, and a .zip can say anything about itself. `unpack_zip` refuses, before writing a
byte: an archive over MAX_ZIP_BYTES, more than MAX_ZIP_FILES members, more than MAX_UNPACKED_BYTES
declared in total, a member whose name is absolute or climbs out (`../`), a symlink member, and a member
that inflates more than MAX_RATIO times (a zip bomb). While writing it counts the bytes really inflated,
so an archive that lies about its sizes is stopped at the cap too. The unpacked folder is then read like
any `local` repository, through `collect.safe_fs` (no read leaves the folder, no link is followed out).
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path, PurePosixPath

from moxi_pipeline.collect.key_files import read_text_head
from moxi_pipeline.collect.local_repos import MAX_README_BYTES, scan_repository
from moxi_pipeline.collect.safe_fs import is_inside

MAX_ZIP_BYTES = 50_000_000  # the upload itself
MAX_UNPACKED_BYTES = 200_000_000  # all members inflated
MAX_ZIP_FILES = 20_000
MAX_RATIO = 200  # a member inflating more than this many times its compressed size is a bomb (text is ~3-10x)
_CHUNK_BYTES = 1 << 20


def unpack_zip(archive: str | Path, dest: str | Path) -> Path:
    """Unpack `archive` into the empty folder `dest`; the repository root: `dest`, or its one top folder."""
    archive, dest = Path(archive), Path(dest)
    size = archive.stat().st_size
    if size > MAX_ZIP_BYTES:
        raise ValueError(f"the .zip is {size:,} bytes; the limit is {MAX_ZIP_BYTES:,}")
    try:
        bundle = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise ValueError(f"{archive.name} is not a .zip archive") from None
    with bundle:
        members = _checked_members(bundle)
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        written = 0
        for member in members:
            target = root / member.filename
            if not is_inside(root, target.parent if member.is_dir() else target):
                raise ValueError(f"zip member {member.filename!r} would land outside the folder")
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            written = _copy_member(bundle, member, target, written)
    if not any(root.iterdir()):
        raise ValueError("the .zip is empty: there is no repository in it")
    entries = list(root.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else root


def _checked_members(bundle: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    members = bundle.infolist()
    if len(members) > MAX_ZIP_FILES:
        raise ValueError(f"the .zip has {len(members):,} members; the limit is {MAX_ZIP_FILES:,}")
    declared = sum(member.file_size for member in members)
    if declared > MAX_UNPACKED_BYTES:
        raise ValueError(f"the .zip would unpack to {declared:,} bytes; the limit is {MAX_UNPACKED_BYTES:,} (a zip bomb?)")
    for member in members:
        name = PurePosixPath(member.filename.replace("\\", "/"))
        if name.is_absolute() or ".." in name.parts or (name.parts and ":" in name.parts[0]):
            raise ValueError(f"zip member {member.filename!r} has an absolute or climbing path")
        if stat.S_ISLNK(member.external_attr >> 16):
            raise ValueError(f"zip member {member.filename!r} is a symbolic link; links are not unpacked")
        if member.file_size > 1_000_000 and member.file_size > MAX_RATIO * max(1, member.compress_size):
            raise ValueError(f"zip member {member.filename!r} inflates {member.file_size // max(1, member.compress_size)}x "
                             f"(a zip bomb?); the limit is {MAX_RATIO}x")
    return members


def _copy_member(bundle: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path, written: int) -> int:
    """Copy one member, counting real inflated bytes against MAX_UNPACKED_BYTES; O_EXCL: no overwrite, no link."""
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with bundle.open(member) as source, os.fdopen(descriptor, "wb") as out:
        while block := source.read(_CHUNK_BYTES):
            written += len(block)
            if written > MAX_UNPACKED_BYTES:
                raise ValueError(f"the .zip inflates past {MAX_UNPACKED_BYTES:,} bytes (a zip bomb?)")
            out.write(block)
    return written


def remote_repository(url: str, settings):
    """A GitHub repository through the API (GITHUB_TOKEN when set), as `moxi generate URL` reads it."""
    from moxi_pipeline.collect.github import GitHubClient
    from moxi_pipeline.collect.github_repos import analyze_github

    token = settings.github_token.get_secret_value() if settings.github_token else None
    client = GitHubClient(settings.github_api_url, token, timeout_s=settings.github_timeout_s,
                          max_retries=settings.github_max_retries)
    return analyze_github(client, url)


def local_repository(path: str):
    """A folder on the server; a clear ValueError when it is not one, or holds no file at all."""
    folder = Path(path.strip()).expanduser()
    if not path.strip():
        raise ValueError("enter a folder path")
    if not folder.is_dir():
        raise ValueError(f"{path.strip()!r} does not exist or is not a folder on the server")
    repo = scan_repository(folder)
    if not repo.file_tree:
        raise ValueError(f"{path.strip()!r} is an empty repository: there are no files to read")
    return repo


def own_readme(repo) -> str | None:
    """The README a repository already has, or None."""
    if hasattr(repo, "readme"):
        return repo.readme or None
    text = read_text_head(repo.root, repo.readme_path, MAX_README_BYTES) if repo.readme_path else None
    return text if text and text.strip() else None
