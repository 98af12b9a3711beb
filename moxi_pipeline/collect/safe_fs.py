"""Reading a repository's files without ever leaving it.

A repository is untrusted input: `Makefile` can be a link to `~/.aws/credentials`, `docs` a link to
`/`, `README.md` a FIFO that blocks its reader forever, `data.bin` a 2 GB file. Whatever is read from
it ends up in records, the dataset, prompts and requests. So every read of a repository's files goes
through `read_head`, which

- resolves the path, symlinks included, and refuses it unless the result lies inside the root: a link
  to another file of the repository is read like that file, a link out of it never is;
- refuses anything but a regular file (folder, FIFO, socket, device) before opening it, opens with
  O_NOFOLLOW | O_NONBLOCK (a FIFO swapped in meanwhile cannot block the open), and checks the open
  descriptor is the same regular file, so a swap between the check and the open is caught too;
- reads at most `max_bytes`.

A refusal is a `RefusedRead` (an OSError) whose message says why.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_READ_BLOCK_BYTES = 1 << 20


class RefusedRead(OSError):
    """A path `read_head` will not read; the message says why."""


def is_inside(root: Path, path: str | Path) -> bool:
    """Whether `path`, symlinks resolved, is `root` or lies below it (`root` must be resolved already)."""
    real = os.path.realpath(path)
    return real == str(root) or real.startswith(str(root).rstrip(os.sep) + os.sep)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def read_head(root: Path, rel_path: str, max_bytes: int) -> bytes:
    """At most `max_bytes` of the regular file `root/rel_path`, which must resolve to inside `root`.

    `root` is the repository's resolved path. Raises RefusedRead (see the module docstring), or the
    OSError of a file that is missing or unreadable.
    """
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
    real = os.path.realpath(root / rel_path)
    if not is_inside(root, real):
        raise RefusedRead(f"{rel_path} resolves outside the repository")
    before = os.lstat(real)
    if not stat.S_ISREG(before.st_mode):
        raise RefusedRead(f"{rel_path} is {_kind(before.st_mode)}")
    descriptor = os.open(real, _OPEN_FLAGS)
    try:
        after = os.fstat(descriptor)
        if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            raise RefusedRead(f"{rel_path} changed while it was being opened")
        blocks, remaining = [], max_bytes
        while remaining > 0 and (block := os.read(descriptor, min(remaining, _READ_BLOCK_BYTES))):
            blocks.append(block)
            remaining -= len(block)
        return b"".join(blocks)
    finally:
        os.close(descriptor)
