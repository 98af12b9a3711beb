"""A repository's license: the LICENSE file at its root, and the SPDX id its text matches."""

from __future__ import annotations

import tempfile
from pathlib import Path

LICENSE_NAMES = ("license", "licence", "copying", "unlicense")


def license_file(file_tree) -> str | None:
    """A root-level file whose name (any case, any extension) starts with a license name."""
    for path in sorted(file_tree):
        if "/" not in path and path.lower().startswith(LICENSE_NAMES):
            return path
    return None


def spdx_from_text(text: str) -> str | None:
    """The SPDX id of a license text, by `identify`'s matcher (exact text, else <5% edit distance)."""
    from identify.identify import license_id

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "LICENSE"
        path.write_text(text, encoding="utf-8")
        return license_id(str(path))
