"""A manifest of any shape gives the facts it can and a note for the rest: never an exception, never a fact
that is not in the manifest itself (no XML entity resolved, no YAML tag constructed, no file read)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moxi_pipeline.readme.facts import repo_facts
from moxi_pipeline.readme.facts.manifests import parse_manifest
from moxi_pipeline.records import KeyFile

SAFE = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_.", min_size=1, max_size=10)
KEYS = st.sampled_from(["name", "description", "license", "scripts", "bin", "dependencies", "project", "tool", "poetry",
                        "package", "requires-python", "rust-version", "engines", "node", "private", "require", "php",
                        "publish_to", "text", "version", "python", "metadata", "options", "install_requires"]) | SAFE
LEAF = st.one_of(SAFE, st.integers(-3, 99), st.booleans(), st.floats(0, 9, allow_nan=False))
VALUE = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4), max_leaves=10)
DOCUMENT = st.dictionaries(KEYS, VALUE, max_size=6)
# what a hostile manifest adds: an external XML entity, YAML tags that would construct objects, a TOML cut mid-table
OUTSIDE = "/etc/hostname"
HOSTILE = {
    "xml": f'<?xml version="1.0"?>\n<!DOCTYPE p [<!ENTITY ext SYSTEM "file://{OUTSIDE}"><!ENTITY e "&ext;">]>\n',
    "yaml": "name: !!python/object/apply:os.getcwd []\ndescription: !custom {a: 1}\n",
    "toml": '[project\nname = "cut',
}


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _toml(data: dict) -> str:
    plain = [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    tables = [f"[{json.dumps(k)}]\n" + "\n".join(f"{json.dumps(kk)} = {_toml_value(vv)}" for kk, vv in v.items())
              for k, v in data.items() if isinstance(v, dict)]
    return "\n".join(plain + tables) + "\n"


def _xml(data, tag: str = "project") -> str:
    if isinstance(data, dict):
        return f"<{tag}>" + "".join(_xml(v, k if k[0].isalpha() else "x" + k) for k, v in data.items()) + f"</{tag}>"
    if isinstance(data, list):
        return "".join(_xml(v, tag) for v in data)
    return f"<{tag}>{data}</{tag}>"


def _ini(data: dict) -> str:
    sections = {k: v for k, v in data.items() if isinstance(v, dict)}
    return "".join(f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)[:40]}\n" for k, v in body.items()) for name, body in sections.items())


def _lines(data: dict) -> str:  # line formats: go.mod, setup.py, gemspec, Gemfile, requirements.txt, gradle, METADATA
    out = []
    for key, value in data.items():
        text = value if isinstance(value, str) else json.dumps(value)
        out += [f"module {text}", f"go {text}", f"{key}='{text}'", f"spec.{key} = '{text}'", f"gem '{text}'", f"{text}>=1",
                f"implementation '{key}:{text}'", f"Name: {text}", f"Requires-Dist: {text}"]
    return "\n".join(out) + "\n"


# every file repo_facts reads as a manifest, with how its text is made
FORMATS = {
    "pyproject.toml": _toml, "Cargo.toml": _toml, "package.json": lambda d: json.dumps(d, indent=2),
    "composer.json": lambda d: json.dumps(d, indent=4), "pubspec.yaml": lambda d: yaml.safe_dump(d, sort_keys=False),
    "pom.xml": _xml, "App.csproj": lambda d: _xml(d, "Project"), "setup.cfg": _ini, "setup.py": _lines, "go.mod": _lines,
    "x.gemspec": _lines, "Gemfile": _lines, "requirements.txt": _lines, "build.gradle": _lines,
    "build.gradle.kts": _lines, "METADATA": _lines,
}
HOSTILE_KIND = {"pom.xml": "xml", "App.csproj": "xml", "pubspec.yaml": "yaml", "pyproject.toml": "toml", "Cargo.toml": "toml"}
PREFIXES = ("Python ", "Node.js ", "Rust ", "Go ", "PHP ")


def _facts_of(manifest) -> list[str]:
    strings = [manifest.name, manifest.description, manifest.license, manifest.group, manifest.requires,
               *manifest.binaries, *manifest.scripts, *manifest.dependencies]
    return [s.removeprefix(next((p for p in PREFIXES if s.startswith(p)), "")) for s in strings if s is not None]


@pytest.mark.parametrize("path", sorted(FORMATS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=DOCUMENT, hostile=st.booleans(), cut=st.floats(0.0, 1.0), whole=st.booleans())
def test_any_manifest_gives_facts_only_from_itself_and_never_raises(path, data, hostile, cut, whole):
    text = FORMATS[path](data)
    if hostile and path in HOSTILE_KIND:
        text = HOSTILE[HOSTILE_KIND[path]] + text.replace(">", ">&e;", 1)
    if not whole:
        text = text[: int(len(text) * cut)]  # key files arrive cut at a cap, anywhere
    manifest = parse_manifest(path, text)
    assert manifest is not None
    for fact in _facts_of(manifest):
        assert fact in text or fact in path, (fact, text)
    record = SimpleNamespace(repo="o/r", repo_url="https://github.com/o/r", file_tree=(path,),
                             key_files=(KeyFile(path=path, content=text),), language=None)
    facts = repo_facts(record)  # RepoFacts validates every field's type: a stray int would raise here
    assert all(isinstance(note, str) and path in note for note in facts.notes)


@pytest.mark.parametrize(("path", "text", "facts", "note"), [
    ("pyproject.toml", '[project]\nname = "tool"\nscripts = 5\n', {"name": "tool", "binaries": ()},
     "pyproject.toml: [project] scripts is int, not a table"),
    ("pyproject.toml", "project = 5\n", {"name": None}, "pyproject.toml: project is int, not a table"),
    ("pyproject.toml", '[tool]\npoetry = "x"\n[project]\nname = "p"\n', {"name": "p"}, "pyproject.toml: [tool] poetry is str, not a table"),
    ("Cargo.toml", '[package]\nname = "crab"\nbin = 5\n', {"name": "crab"}, None),
    ("Cargo.toml", 'bin = 5\n[package]\nname = "crab"\n', {"name": "crab", "binaries": ()},
     "Cargo.toml: bin is int, not an array of tables"),
    ("Cargo.toml", 'package = "x"\n', {"name": None}, "Cargo.toml: package is str, not a table"),
    ("composer.json", '{"name": "a/b", "license": []}', {"name": "a/b", "license": None}, None),
    ("pubspec.yaml", "name: app\ndependencies: {1: x, http: any}\n", {"name": "app", "dependencies": ("http",)}, None),
    ("pubspec.yaml", "name: !!python/object/apply:os.getcwd []\n", {"name": None}, None),
])
def test_an_odd_manifest_keeps_what_it_can_and_notes_the_rest(path, text, facts, note):
    manifest = parse_manifest(path, text)
    assert {key: getattr(manifest, key) for key in facts} == facts
    assert manifest.notes == ((note,) if note else ())


def test_repo_facts_carries_the_notes_of_an_odd_pyproject():
    record = SimpleNamespace(repo="o/tool", repo_url="https://github.com/o/tool", file_tree=("pyproject.toml", "tool.py"),
                             key_files=(KeyFile(path="pyproject.toml", content='[project]\nname = "tool"\nscripts = 5\n'),),
                             language="Python")
    facts = repo_facts(record)
    assert (facts.package, facts.install, facts.notes) == (
        "tool", ("pip install tool",), ("pyproject.toml: [project] scripts is int, not a table",))


def test_a_parser_that_fails_anyway_gives_an_empty_manifest_and_a_note(monkeypatch):
    from moxi_pipeline.readme.facts import manifests

    def broken(path, text):
        raise RecursionError("too deep")

    parsers = tuple((pattern, broken if pattern == "go.mod" else parser) for pattern, parser in manifests.PARSERS)
    monkeypatch.setattr(manifests, "PARSERS", parsers)
    monkeypatch.setitem(manifests.ECOSYSTEMS, broken, "go")
    manifest = parse_manifest("go.mod", "module x\n")
    assert (manifest.ecosystem, manifest.name, manifest.notes) == ("go", None, ("go.mod: not read (RecursionError: too deep)",))


def test_moxi_generate_prints_one_line_naming_the_repository_on_any_failure(monkeypatch, capsys, tmp_path):
    from moxi_pipeline import cli

    def crash(args):
        raise TypeError("'int' object is not iterable")

    monkeypatch.setattr(cli, "generate", crash)
    assert cli.main(["generate", str(tmp_path / "repo")]) == 1
    err = capsys.readouterr().err
    assert err == f"moxi generate: {tmp_path / 'repo'}: failed with TypeError: 'int' object is not iterable\n"


def test_one_odd_pyproject_among_five_repositories_does_not_stop_the_dataset():
    from moxi_pipeline.dataset.chunk import chunk_records
    from moxi_pipeline.dataset.samples import DatasetConfig, build_sft_dataset
    from moxi_pipeline.records import RepoRecord

    def readme(name: str) -> str:  # the shape dataset/test_samples.py's long_readme uses
        return (f"# {name}\n\n" + f"{name} turns input files into reports. " * 8 + "\n\n## Usage\n\n"
                + f"Call {name}.run() on a folder and read the report it returns. " * 12 + "\n")

    records = [RepoRecord(repo_url=f"https://example.com/o/p{i}", owner="o", repo=f"p{i}", readme=readme(f"p{i}"),
                          file_tree=(f"p{i}/__init__.py", "pyproject.toml"), source="jsonl", project_type="python_package",
                          key_files=(KeyFile(path="pyproject.toml", content=f'[project]\nname = "p{i}"\n'
                                             + ("scripts = 5\n" if i == 2 else "")),)) for i in range(5)]
    samples = build_sft_dataset(records, chunk_records(records, 200, 2000), DatasetConfig(test_fraction=0.2))
    assert {s.repo for s in samples} == {f"p{i}" for i in range(5)}  # before: TypeError: 'int' object is not iterable
