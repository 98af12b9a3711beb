"""Typed records that cross phase boundaries.

Field names follow the seed's MongoDB collection schema (`readme_samples`, `sft_samples`):
`repo_url`, `readme`, `file_tree`, `key_files`, `project_type`, `instruction`, `input`, `content`.
Every record is a frozen pydantic model, so a bad value fails with the field's name in the message.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

Source = Literal["installed", "jsonl", "local", "github"]  # where a record was collected from
SOURCES: tuple[str, ...] = get_args(Source)
SPLITS = ("train", "test")


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")


class KeyFile(Record):
    path: str = Field(min_length=1)
    content: str


class GitHubInfo(Record):
    """What the GitHub API says of a repository beyond the collection schema (`github` source only)."""

    stars: int | None = None
    topics: tuple[str, ...] = ()
    default_branch: str | None = None
    pushed_at: str | None = None
    description: str | None = None
    commit: str | None = None  # the default branch's head the record was read at
    readme_path: str | None = None  # the README's name as GitHub reports it
    tree_truncated: bool = False  # GitHub cut the recursive tree (over 100,000 entries or 7 MB)


class RepoRecord(Record):
    """One repository as collected: the `readme_samples` collection."""

    repo_url: str = Field(min_length=1)
    owner: str
    repo: str = Field(min_length=1)
    readme: str
    file_tree: tuple[str, ...]
    key_files: tuple[KeyFile, ...] = ()
    language: str | None = None
    license: str | None = None
    project_type: str = "unknown"
    source: Source
    content_hash: str = ""
    github: GitHubInfo | None = None

    @field_validator("readme")
    @classmethod
    def _readme_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("readme is empty")
        return value

    def model_post_init(self, __context) -> None:
        if not self.content_hash:
            object.__setattr__(self, "content_hash", content_hash(self.readme, self.file_tree, self.key_files))


def content_hash(readme: str, file_tree, key_files) -> str:
    """sha256 over what the model sees, so a re-collect can tell changed repositories apart."""
    payload = json.dumps(
        {"readme": readme, "file_tree": list(file_tree), "key_files": [(k.path, k.content) for k in key_files]},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class ReadmeChunk(Record):
    """A markdown-aware slice of one README, carrying its repository's context."""

    repo_url: str
    repo: str
    chunk_index: int = Field(ge=0)
    section_title: str
    content: str = Field(min_length=1)
    file_tree: tuple[str, ...]
    key_files: tuple[KeyFile, ...] = ()
    project_type: str = "unknown"


class RepoFacts(Record):
    """What is true about a repository, read from its tree and key files (`moxi_pipeline.readme.facts.repo_facts`)."""

    name: str  # the README's title
    package: str | None = None  # the name it is installed by (registry name, Go module path)
    description: str | None = None
    ecosystem: str | None = None
    language: str | None = None
    repo_url: str | None = None  # a hosted repository URL (https://github.com/o/r), else None
    requires: str | None = None  # "Python >=3.9"
    install: tuple[str, ...] = ()  # shell commands, in order
    commands: tuple[str, ...] = ()  # what a user runs once installed
    test_command: str | None = None
    license: str | None = None  # SPDX id
    license_file: str | None = None
    dependencies: tuple[str, ...] = ()
    frameworks: tuple[str, ...] = ()
    tests: bool = False
    docs_dir: str | None = None
    ci: tuple[str, ...] = ()
    examples_dir: str | None = None
    contributing_file: str | None = None
    changelog_file: str | None = None
    python_packages: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what a manifest held that could not be read (wrong type, cut short): left out

    def allowed_urls(self) -> tuple[str, ...]:
        """URLs built from facts: the repository and its pages, and the package's registry page."""
        urls = [self.repo_url] if self.repo_url else []
        registry = {
            "python": "https://pypi.org/project/", "node": "https://www.npmjs.com/package/",
            "rust": "https://crates.io/crates/", "go": "https://pkg.go.dev/", "ruby": "https://rubygems.org/gems/",
            "php": "https://packagist.org/packages/", "dotnet": "https://www.nuget.org/packages/",
            "dart": "https://pub.dev/packages/",
        }.get(self.ecosystem or "")
        if self.package and registry:
            urls.append(registry + self.package)
        return tuple(urls)


class SampleInput(Record):
    file_tree: tuple[str, ...]
    project_type: str
    key_files: tuple[KeyFile, ...] = ()
    facts: RepoFacts | None = None  # section samples carry the facts block the prompt renders


class SftSample(Record):
    """One supervised sample: the `sft_samples` collection."""

    instruction: str = Field(min_length=1)
    input: SampleInput
    content: str = Field(min_length=1)
    repo_url: str
    repo: str
    kind: Literal["section", "readme"]
    split: Literal["train", "test"]
    section: str = ""  # the outline section a `section` sample teaches: about | features | usage


class Artifact(Record):
    """A directory or file an asset produced in the artifact store, plus what the UI shows of it."""

    name: str
    path: str
    metadata: dict = Field(default_factory=dict)
