"""Folders that appear whole or not at all: write into a staging folder beside the target, then rename.

Used for every folder a phase publishes (the imported base model, an adapter, a rebuilt checkpoint,
a merged model): a crash mid-write leaves the old complete folder, never half of a new one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def staging_dir(out_dir: Path) -> Path:
    """An empty `.<name>.tmp` beside `out_dir` to write into; what a crashed earlier attempt left is cleared."""
    staging = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def publish_dir(staging: Path, out_dir: Path) -> None:
    """Rename the finished `staging` folder to `out_dir`, replacing an older one.

    Two renames on one filesystem: `out_dir` is always the old complete folder, the new complete one,
    or (for an instant, when replacing) absent, never half of either.
    """
    old = out_dir.with_name(f".{out_dir.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(staging, out_dir)
    shutil.rmtree(old, ignore_errors=True)
