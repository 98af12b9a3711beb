"""The `installed` source: Python distributions in an environment, read through importlib.metadata.

Why it exists: it is offline and always present, so `make demo` has READMEs with no network.

- readme: the long description (the METADATA payload or its `Description` header). Only Markdown is
  kept: `Description-Content-Type: text/markdown`, or no/plain type and text that looks like Markdown
  (a `#` heading or a code fence). reStructuredText and short descriptions (< `MIN_README_CHARS`) are
  skipped with the reason.
- file_tree: the distribution's RECORD, posix paths, minus byte-code (`__pycache__/`, `*.pyc`) and the
  installer's bookkeeping (`RECORD`, `INSTALLER`, `REQUESTED`, `WHEEL`, `direct_url.json`); scripts
  installed outside site-packages (`../../../bin/tool`) appear as `bin/tool`.
- key_files: METADATA with the long description stripped (it IS the README: leaving it in would hand
  the model the answer), then the top-level package `__init__.py`; each capped like any key file.
- repo_url: the first Project-URL labelled Source/Repository/Code/GitHub/Homepage (in that order), or
  Home-page, that points at a repository host; else `pypi:<name>`.
- repo: the distribution's name (the README is about the package even when its repository is a
  monorepo); owner: from the repository URL, else the author, else "".
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

from moxi_pipeline.collect.key_files import MAX_KEY_FILE_CHARS, read_text_head
from moxi_pipeline.collect.project_type import detect_project_type
from moxi_pipeline.collect.result import Skipped
from moxi_pipeline.collect.urls import is_repo_url, normalize_repo_url, owner_and_name
from moxi_pipeline.records import KeyFile, RepoRecord

# A README shorter than this is a one-liner ("A small helper."): nothing to learn structure from.
MIN_README_CHARS = 500
URL_LABELS = ("source", "source code", "repository", "code", "github", "homepage")
BOOKKEEPING = {"RECORD", "INSTALLER", "REQUESTED", "WHEEL", "direct_url.json"}
_MARKDOWN_SIGNS = re.compile(r"^(#{1,6} \S|```|~~~)", re.MULTILINE)


def list_distributions(search_paths: list[str] | None = None) -> list[importlib.metadata.Distribution]:
    """Distributions on `search_paths` (default: sys.path), sorted by normalised name then version."""
    found = importlib.metadata.distributions(**({"path": search_paths} if search_paths else {}))
    return sorted(found, key=lambda dist: (_normalized_name(dist), dist.version or ""))


def _normalized_name(dist: importlib.metadata.Distribution) -> str:
    return re.sub(r"[-_.]+", "-", (dist.metadata["Name"] or "")).lower()


def readme_of(dist: importlib.metadata.Distribution, min_chars: int = MIN_README_CHARS) -> str | Skipped:
    """The long description when it is substantial Markdown, else a Skipped saying why not."""
    name = dist.metadata["Name"] or "?"
    body = (dist.metadata["Description"] or "").strip()
    content_type = (dist.metadata["Description-Content-Type"] or "").split(";")[0].strip().lower()
    if len(body) < min_chars:
        return Skipped(name, f"description has {len(body)} chars, fewer than {min_chars}")
    if content_type == "text/markdown":
        return body
    if content_type in ("", "text/plain") and _MARKDOWN_SIGNS.search(body):
        return body
    return Skipped(name, f"description is {content_type or 'untyped'} and not markdown")


def file_tree_of(dist: importlib.metadata.Distribution) -> tuple[str, ...]:
    """RECORD's paths as posix strings, minus byte-code and installer bookkeeping (module docstring)."""
    paths = set()
    for file in dist.files or ():
        parts = [part for part in file.parts if part != ".."]
        if not parts or parts[-1] in BOOKKEEPING or "__pycache__" in parts or parts[-1].endswith(".pyc"):
            continue
        if len(parts) < len(file.parts):  # it climbed out of site-packages: keep from `bin/` on
            parts = parts[parts.index("bin"):] if "bin" in parts else parts[-1:]
        paths.add("/".join(parts))
    return tuple(sorted(paths))


def metadata_key_file(dist: importlib.metadata.Distribution) -> KeyFile:
    """METADATA's headers without the long description, under its real path in the tree."""
    lines = [f"{key}: {value}" for key, value in dist.metadata.items() if key != "Description"]
    path = next(
        (str(file.as_posix()) for file in dist.files or () if file.name == "METADATA"), "METADATA"
    )
    return KeyFile(path=path, content="\n".join(lines)[:MAX_KEY_FILE_CHARS])


def package_init_key_file(dist: importlib.metadata.Distribution) -> KeyFile | None:
    """The top-level package `__init__.py`, preferring the one named like the distribution."""
    inits = sorted(
        file for file in dist.files or ()
        if len(file.parts) == 2 and file.name == "__init__.py" and not file.parts[0].endswith(".dist-info")
    )
    if not inits:
        return None
    wanted = _normalized_name(dist).replace("-", "_")
    best = next((file for file in inits if file.parts[0].lower() == wanted), inits[0])
    # read relative to the distribution's folder, so a RECORD entry can't lead the read out of it
    text = read_text_head(Path(str(dist.locate_file(""))), best.as_posix())
    return KeyFile(path=best.as_posix(), content=text) if text is not None else None


def repo_url_of(dist: importlib.metadata.Distribution) -> str:
    labelled = {}
    for entry in dist.metadata.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        labelled.setdefault(label.strip().lower(), url.strip())
    candidates = [labelled[label] for label in URL_LABELS if label in labelled]
    candidates.append(dist.metadata["Home-page"] or "")
    for url in candidates:
        if url and is_repo_url(url):
            return normalize_repo_url(url)
    return f"pypi:{_normalized_name(dist)}"


def license_of(dist: importlib.metadata.Distribution) -> str | None:
    """License-Expression, else a one-line License field, else the last OSI classifier segment."""
    expression = (dist.metadata["License-Expression"] or "").strip()
    if expression:
        return expression
    field = (dist.metadata["License"] or "").strip()
    if field and "\n" not in field and len(field) <= 100 and field.upper() != "UNKNOWN":
        return field
    for classifier in dist.metadata.get_all("Classifier") or []:
        if classifier.startswith("License ::") and classifier.count("::") >= 2:
            return classifier.rsplit("::", 1)[1].strip()
    return None


def _author_of(dist: importlib.metadata.Distribution) -> str:
    author = (dist.metadata["Author"] or "").strip()
    if author:
        return author
    # `Author-email: Samuel Colvin <s@example.com>, Other <o@example.com>` -> "Samuel Colvin"
    email = (dist.metadata["Author-email"] or "").split(",")[0]
    return email.split("<")[0].strip().strip('"')


def record_from_distribution(
    dist: importlib.metadata.Distribution, min_readme_chars: int = MIN_README_CHARS
) -> RepoRecord | Skipped:
    if not dist.metadata["Name"]:
        return Skipped(str(dist), "METADATA has no Name")
    readme = readme_of(dist, min_readme_chars)
    if isinstance(readme, Skipped):
        return readme
    file_tree = file_tree_of(dist)
    key_files = tuple(k for k in (metadata_key_file(dist), package_init_key_file(dist)) if k is not None)
    repo_url = repo_url_of(dist)
    owner = owner_and_name(repo_url)[0] if is_repo_url(repo_url) else _author_of(dist)
    return RepoRecord(
        repo_url=repo_url, owner=owner, repo=dist.metadata["Name"], readme=readme, file_tree=file_tree,
        key_files=key_files, language="Python", license=license_of(dist),
        project_type=detect_project_type(file_tree, key_files, "Python"), source="installed",
    )
