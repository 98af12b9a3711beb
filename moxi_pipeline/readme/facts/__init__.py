"""`repo_facts(record)`: what is true about a repository, read deterministically from its tree and key files.

Everything the README states as fact comes from here: the name, the one-line description, the install
command for its ecosystem, the commands it provides, the license, what it is built with, and whether it
has tests, docs, CI, examples and a contributing guide. The model writes prose around these facts; the
grounding pass checks the prose against them.

Where no manifest gives a description, one comes from the key files (`descriptions.py`: a podspec's summary,
a Go package's doc comment, ...). The primary manifest is the shallowest one whose ecosystem matches the repository's language (a Go
project's docs `package.json` does not make it a Node package), then the shallowest with a name.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Protocol

from moxi_pipeline.collect.urls import is_repo_url
from moxi_pipeline.readme.facts import tree
from moxi_pipeline.readme.facts.descriptions import key_file_description
from moxi_pipeline.readme.facts.manifests import (
    Manifest,
    makefile_targets,
    parse_manifest,
)
from moxi_pipeline.records import KeyFile, RepoFacts

__all__ = ["ECOSYSTEM_NAMES", "RepoFacts", "repo_facts"]

LANGUAGE_ECOSYSTEMS = {
    "Python": "python", "Jupyter Notebook": "python", "JavaScript": "node", "TypeScript": "node", "Vue": "node",
    "Svelte": "node", "CoffeeScript": "node", "Rust": "rust", "Go": "go", "Ruby": "ruby", "PHP": "php",
    "Java": "java", "Kotlin": "java", "Scala": "java", "Groovy": "java", "C#": "dotnet", "F#": "dotnet",
    "Dart": "dart",
}
ECOSYSTEM_NAMES = {
    "python": "Python", "node": "Node.js", "rust": "Rust", "go": "Go", "ruby": "Ruby", "php": "PHP",
    "java": "Java", "dotnet": ".NET", "dart": "Dart",
}
# npm scripts a reader runs first, in the order a README lists them
_NPM_SCRIPTS = ("start", "dev", "build", "test", "lint")
_MAKE_TARGETS = ("install", "build", "run", "test", "all", "dev", "serve", "docs")
MAX_COMMANDS = 6


class RepoLike(Protocol):
    repo: str
    repo_url: str
    file_tree: tuple[str, ...]
    key_files: tuple[KeyFile, ...]
    language: str | None


def _manifests(key_files) -> list[Manifest]:
    return [m for key_file in key_files if (m := parse_manifest(key_file.path, key_file.content)) is not None]


def primary_manifest(manifests: list[Manifest], language: str | None) -> Manifest | None:
    wanted = LANGUAGE_ECOSYSTEMS.get(language or "")
    named = [m for m in manifests if m.name]
    pool = [m for m in named if m.ecosystem == wanted] or [m for m in manifests if m.ecosystem == wanted] or named
    if not pool:
        return None
    return min(pool, key=lambda m: (m.path.count("/"), m.name is None))


def _is_main_package(key_files, path: str) -> bool:
    text = next((k.content for k in key_files if k.path == path), None)
    return text is None or re.search(r"^package\s+main\b", text, re.MULTILINE) is not None


def install_commands(manifest: Manifest | None, file_tree, key_files, name: str) -> tuple[str, ...]:
    """The install command for the manifest's ecosystem (module docstring of the issue's list)."""
    commands: list[str] = []
    if manifest is not None:
        eco, package = manifest.ecosystem, manifest.name
        has_main_rs = "src/main.rs" in file_tree or bool(manifest.binaries)
        go_cmds = sorted({PurePosixPath(p).parts[1] for p in file_tree if re.fullmatch(r"cmd/[^/]+/main\.go", p)})
        if eco == "python":
            commands.append(f"pip install {package}" if package else "pip install -r requirements.txt")
        elif eco == "node":
            commands.append("npm install" if manifest.private or not package
                            else f"npm install {'-g ' if manifest.binaries else ''}{package}")
        elif eco == "rust":
            commands.append("cargo build --release" if manifest.private or not package
                            else f"cargo {'install' if has_main_rs else 'add'} {package}")
        elif eco == "go" and package:
            if go_cmds:
                commands += [f"go install {package}/cmd/{cmd}@latest" for cmd in go_cmds[:2]]
            elif "main.go" in file_tree and _is_main_package(key_files, "main.go"):
                commands.append(f"go install {package}@latest")
            else:
                commands.append(f"go get {package}")
        elif eco == "ruby":
            commands.append(f"gem install {package}" if package else "bundle install")
        elif eco == "php" and package:
            commands.append(f"composer require {package}")
        elif eco == "java":
            commands.append("./gradlew build" if "gradlew" in file_tree else
                            "mvn install" if manifest.path.endswith("pom.xml") else "gradle build")
        elif eco == "dotnet":
            commands.append("dotnet build" if manifest.private else f"dotnet add package {package}")
        elif eco == "dart" and package:
            commands.append("dart pub get" if manifest.private else f"dart pub add {package}")
    if "Dockerfile" in file_tree:
        commands.append(f"docker build -t {re.sub(r'[^a-z0-9._-]+', '-', name.lower()).strip('-.') or 'app'} .")
    return tuple(commands)


def run_commands(manifest: Manifest | None, manifests: list[Manifest], file_tree, key_files) -> tuple[str, ...]:
    """Commands a user runs: CLI entry points, `python -m pkg`, npm scripts, then Makefile targets."""
    commands: list[str] = []
    if manifest is not None:
        commands += list(manifest.binaries)
        if manifest.ecosystem == "node":
            scripts = [s for s in _NPM_SCRIPTS if s in manifest.scripts]
            commands += ["npm start" if s == "start" else "npm test" if s == "test" else f"npm run {s}" for s in scripts]
        if manifest.ecosystem == "go":
            commands += sorted({PurePosixPath(p).parts[1] for p in file_tree if re.fullmatch(r"cmd/[^/]+/main\.go", p)})
        if manifest.ecosystem == "rust" and not manifest.binaries and "src/main.rs" in file_tree and manifest.name:
            commands.append(manifest.name)
    for package in tree.python_packages(file_tree):
        if any(p in (f"{package}/__main__.py", f"src/{package}/__main__.py") for p in file_tree):
            commands.append(f"python -m {package}")
    makefile = next((k.content for k in key_files if k.path in ("Makefile", "makefile")), None)
    if makefile:
        targets = makefile_targets(makefile)
        commands += [f"make {t}" for t in _MAKE_TARGETS if t in targets]
    return tuple(dict.fromkeys(commands))[:MAX_COMMANDS]


def test_command(manifest: Manifest | None, file_tree, tests: list[str], commands) -> str | None:
    if not tests:
        return None
    if "make test" in commands:
        return "make test"
    eco = manifest.ecosystem if manifest else None
    if eco == "node":
        return "npm test" if "npm test" in commands else None
    by_ecosystem = {"python": "pytest", "rust": "cargo test", "go": "go test ./...", "dotnet": "dotnet test",
                    "php": "vendor/bin/phpunit" if "phpunit.xml.dist" in file_tree or "phpunit.xml" in file_tree else None,
                    "ruby": "bundle exec rspec" if any(p.startswith("spec/") for p in tests) else "bundle exec rake test",
                    "java": "./gradlew test" if "gradlew" in file_tree else "mvn test"}
    return by_ecosystem.get(eco)


def _license(record: RepoLike, manifest: Manifest | None, license_path: str | None) -> str | None:
    declared = getattr(record, "license", None)  # a RepoSnapshot (`moxi generate`) has no declared license
    if declared and len(declared) <= 60:
        return declared
    if manifest is not None and manifest.license and len(manifest.license) <= 60:
        return manifest.license
    text = next((k.content for k in record.key_files if k.path == license_path), None)
    return tree.spdx_from_text(text) if text else None


def _display_name(record: RepoLike, manifest: Manifest | None) -> str:
    """The repository's name; a generic folder name ("repo", "app") gives way to the manifest's name."""
    name = record.repo.split("/")[-1]
    if manifest and manifest.name and name.lower() in ("repo", "app", "project", "src", "code", "main"):
        return manifest.name.split("/")[-1]
    return name


def repo_facts(record: RepoLike) -> RepoFacts:
    """The facts of one repository (RepoRecord or RepoSnapshot); deterministic, offline."""
    file_tree, key_files = tuple(record.file_tree), tuple(record.key_files)
    manifests = _manifests(key_files)
    manifest = primary_manifest(manifests, record.language)
    name = _display_name(record, manifest)
    tests = tree.test_paths(file_tree)
    commands = run_commands(manifest, manifests, file_tree, key_files)
    dependencies = tuple(dict.fromkeys(d for m in manifests for d in m.dependencies))
    license_path = tree.license_file(file_tree)
    return RepoFacts(
        name=name,
        package=manifest.name if manifest and not manifest.private else None,
        description=next((m.description for m in ([manifest] if manifest else []) + manifests if m.description), None)
        or key_file_description(key_files),
        ecosystem=manifest.ecosystem if manifest else LANGUAGE_ECOSYSTEMS.get(record.language or ""),
        language=record.language,
        repo_url=record.repo_url if is_repo_url(record.repo_url) else None,
        requires=next((m.requires for m in ([manifest] if manifest else []) + manifests if m.requires), None),
        install=install_commands(manifest, file_tree, key_files, name),
        commands=commands,
        test_command=test_command(manifest, file_tree, tests, commands),
        license=_license(record, manifest, license_path),
        license_file=license_path,
        dependencies=dependencies,
        frameworks=tree.frameworks(dependencies),
        tests=bool(tests),
        docs_dir=tree.first_dir(file_tree, ("docs", "doc", "documentation")),
        ci=tree.ci_systems(file_tree),
        examples_dir=tree.first_dir(file_tree, ("examples", "example", "samples", "demo")),
        contributing_file=tree.root_file(file_tree, ("contributing",)),
        changelog_file=tree.root_file(file_tree, ("changelog", "changes", "history"), also_in=()),
        python_packages=tuple(tree.python_packages(file_tree)),
        notes=tuple(note for m in manifests for note in m.notes),
    )
