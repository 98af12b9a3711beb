"""The collect package: jsonl, local and installed sources, key files, project types, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moxi_pipeline.collect import (
    MAX_KEY_FILE_CHARS,
    MAX_KEY_FILES,
    Skipped,
    collect_repos,
    detect_project_type,
    guess_language,
    rank_key_file_paths,
    read_key_files,
    scan_repository,
)
from moxi_pipeline.collect.local_repos import find_readme, walk_files
from moxi_pipeline.records import KeyFile

README = "# demo\n\nA demo project.\n"


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel_path, content in files.items():
        target = root / rel_path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    return root


def item(**overrides) -> dict:
    fields = {
        "repo": "octo/demo", "repo_url": "https://github.com/octo/demo", "readme": README,
        "file_tree": ["README.md", "setup.py", "demo/__init__.py"], "language": "Python",
    }
    return {**fields, **overrides}


# --- errors -------------------------------------------------------------------------------------


def test_unknown_source_names_field_value_and_choices():
    with pytest.raises(ValueError, match=r"source 'github2' is unknown; choose one of installed, jsonl, local"):
        collect_repos("github2")


@pytest.mark.parametrize("source", ["jsonl", "local"])
def test_missing_path_is_named(source, tmp_path):
    with pytest.raises(ValueError, match=r"path is None"):
        collect_repos(source)
    missing = str(tmp_path / "nope")
    with pytest.raises(ValueError, match=rf"path '{missing}' does not exist"):
        collect_repos(source, missing)


def test_wrong_kind_of_path_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"is not a file"):
        collect_repos("jsonl", str(tmp_path))
    (tmp_path / "x.jsonl").write_text("")
    with pytest.raises(ValueError, match=r"is not a folder"):
        collect_repos("local", str(tmp_path / "x.jsonl"))


@pytest.mark.parametrize("limit", [0, -3])
def test_limit_must_be_positive(limit):
    with pytest.raises(ValueError, match=rf"limit {limit} must be a positive"):
        collect_repos("installed", limit=limit)


# --- jsonl --------------------------------------------------------------------------------------


def test_jsonl_list_fills_owner_repo_and_project_type(tmp_path):
    records = [item(), {**item(repo_url="https://github.com/ann/tool.git", key_files=[], project_type="web_application"),
                        "repo": None}]
    path = tmp_path / "awesome_readme_clean.json"
    path.write_text(json.dumps(records))
    result = collect_repos("jsonl", str(path))
    assert result.skipped == []
    first, second = result.records
    assert (first.owner, first.repo, first.project_type, first.source) == ("octo", "demo", "python_package", "jsonl")
    assert (second.owner, second.repo, second.project_type) == ("ann", "tool", "web_application")
    assert second.repo_url == "https://github.com/ann/tool"  # normalised, so other spellings dedupe against it


def test_jsonl_lines_skip_bad_lines_by_number_and_field(tmp_path):
    lines = [
        json.dumps(item()),
        "{not json",
        json.dumps({k: v for k, v in item(repo_url="https://github.com/a/b").items() if k != "readme"}),
        json.dumps(item(repo_url="https://github.com/a/c", readme="  ")),
        "",
        json.dumps([1, 2]),
        json.dumps(item(readme="# again\n")),
        json.dumps(item(repo="x/y", repo_url="https://github.com/x/y", license={"spdx_id": "MIT"}, stars=3)),
    ]
    path = tmp_path / "dev.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = collect_repos("jsonl", str(path))
    assert [(r.repo, r.license) for r in result.records] == [("demo", None), ("y", "MIT")]
    assert [s.item for s in result.skipped] == ["line 2", "line 3", "line 4", "line 6", "line 7"]
    reasons = [s.reason for s in result.skipped]
    assert reasons[0].startswith("malformed JSON: ")
    assert reasons[1] == "readme: Field required"
    assert reasons[2] == "readme: Value error, readme is empty"
    assert reasons[3] == "expected a JSON object, got list"
    assert reasons[4] == "duplicate repo_url 'https://github.com/octo/demo'; kept line 1"


def test_jsonl_recomputes_a_stale_content_hash(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(item(content_hash="stale", source="github")))
    (record,) = collect_repos("jsonl", str(path)).records
    assert record.content_hash != "stale" and len(record.content_hash) == 64
    assert record.source == "jsonl"


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("a.jsonl", "hello\nworld\n", "is not JSON or JSON Lines"),
        ("a.json", '{"repo": "o/n"}', "holds dict, expected a list"),
        ("a.json", "[1, 2", "is not valid JSON"),
    ],
)
def test_jsonl_file_that_is_not_json_or_not_a_list_is_an_error(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as caught:
        collect_repos("jsonl", str(path))
    assert str(path) in str(caught.value)


def test_jsonl_list_items_are_labelled_by_index(tmp_path):
    path = tmp_path / "l.json"
    path.write_text(json.dumps([item(), "text", item(repo="o/p", repo_url="https://github.com/o/p", file_tree=None)]))
    result = collect_repos("jsonl", str(path))
    assert [(s.item, s.reason) for s in result.skipped] == [
        ("index 1", "expected a JSON object, got str"),
        ("index 2", "file_tree: Input should be a valid tuple"),
    ]


def test_jsonl_keeps_unicode_line_separators_inside_a_record(tmp_path):
    # U+2028, U+2029 and U+0085 are plain characters inside a JSON string; str.splitlines() cut on them,
    # turning one record into two "malformed JSON" lines and shifting every later line number.
    readme = "# demo\n\nOne\u2028two\u2029three\x85four.\n"
    path = tmp_path / "dev.jsonl"
    path.write_text(json.dumps(item(readme=readme), ensure_ascii=False) + "\n{bad\n", encoding="utf-8")
    result = collect_repos("jsonl", str(path))
    assert [record.readme for record in result.records] == [readme]
    assert [skip.item for skip in result.skipped] == ["line 2"]


def test_jsonl_dedupes_every_spelling_of_one_repository(tmp_path):
    urls = ["https://github.com/o/b", "https://github.com/O/B.git", "git@github.com:o/b.git", "http://www.github.com/o/b/"]
    path = tmp_path / "dev.jsonl"
    path.write_text("\n".join(json.dumps(item(repo=None, repo_url=url)) for url in urls))
    result = collect_repos("jsonl", str(path))
    assert [(r.repo_url, r.owner, r.repo) for r in result.records] == [("https://github.com/o/b", "o", "b")]
    assert [(s.item, s.reason) for s in result.skipped] == [
        ("line 2", "duplicate repo_url 'https://github.com/O/B' (same repository as 'https://github.com/o/b'); kept line 1"),
        ("line 3", "duplicate repo_url 'https://github.com/o/b'; kept line 1"),
        ("line 4", "duplicate repo_url 'https://github.com/o/b'; kept line 1"),
    ]


def test_jsonl_string_with_a_lone_surrogate_is_skipped_by_name(tmp_path):
    path = tmp_path / "dev.jsonl"
    path.write_text(json.dumps(item(readme="# demo\n\nbroken \udcff escape")) + "\n")
    result = collect_repos("jsonl", str(path))
    assert result.records == []
    assert [(s.item, s.reason) for s in result.skipped] == [
        ("line 1", "not valid Unicode: a string holds the lone surrogate \\udcff (a broken escape)")]


def test_limit_and_progress(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(json.dumps(item(repo=f"o/r{i}", repo_url=f"https://github.com/o/r{i}")) for i in range(5)))
    calls = []
    result = collect_repos("jsonl", str(path), limit=3, progress=lambda done, total: calls.append((done, total)))
    assert [r.repo for r in result.records] == ["r0", "r1", "r2"]
    assert calls == [(1, 5), (2, 5), (3, 5)]


# --- local --------------------------------------------------------------------------------------


def test_local_single_repository_with_origin(tmp_path):
    repo = write(tmp_path / "checkout", {
        "README.md": README, "pyproject.toml": "[project]\nname='demo'\n", "demo/__init__.py": "VERSION = 1\n",
        ".git/config": '[core]\n\tbare = false\n[remote "upstream"]\n\turl = https://github.com/up/x.git\n'
                       '[remote "origin"]\n\turl = https://user:token@github.com/octo/demo.git\n',
        ".git/HEAD": "ref: refs/heads/main\n",
    })
    result = collect_repos("local", str(repo))
    assert result.skipped == []
    (record,) = result.records
    assert (record.repo_url, record.owner, record.repo) == ("https://github.com/octo/demo", "octo", "demo")
    assert record.file_tree == ("README.md", "demo/__init__.py", "pyproject.toml")
    assert [k.path for k in record.key_files] == ["pyproject.toml", "demo/__init__.py"]
    assert (record.readme, record.language, record.project_type, record.source) == (README, "Python", "python_package", "local")


def test_local_folder_of_repositories(tmp_path):
    write(tmp_path, {
        "beta/readme": "beta readme\n", "beta/main.go": "package main\n",
        "alpha/README.rst": "Alpha\n=====\n", "alpha/index.js": "module.exports = 1\n",
        "gamma/src/lib.rs": "pub fn f() {}\n",
        ".hidden/README.md": README,
        "notes.txt": "not a folder",
    })
    result = collect_repos("local", str(tmp_path))
    assert [(r.repo, r.repo_url, r.owner, r.language) for r in result.records] == [
        ("alpha", (tmp_path / "alpha").as_uri(), "", "JavaScript"),
        ("beta", (tmp_path / "beta").as_uri(), "", "Go"),
    ]
    assert [(s.item, s.reason.split(" (")[0]) for s in result.skipped] == [(str(tmp_path / "gamma"), "no README")]


def test_gitignore_nested_negation_and_vendored_dirs(tmp_path):
    write(tmp_path, {
        "README.md": README,
        ".gitignore": "*.log\n!keep.log\nbuild/\n/top_only.txt\n",
        "app.log": "", "keep.log": "", "top_only.txt": "", "build/out.js": "", "src/build/gen.py": "",
        "src/top_only.txt": "", "src/debug.log": "",
        "sub/.gitignore": "secret.txt\n!important.log\n/here.txt\n",
        "sub/secret.txt": "", "sub/important.log": "", "sub/here.txt": "", "sub/deeper/here.txt": "",
        "node_modules/lib/index.js": "", ".venv/bin/python": "", "pkg/__pycache__/m.pyc": b"\0",
        ".git/config": "[core]\n", ".git/objects/ab/cd": b"\0",
    })
    assert walk_files(tmp_path) == (
        ".gitignore", "README.md", "keep.log", "src/top_only.txt", "sub/.gitignore", "sub/deeper/here.txt",
        "sub/important.log",
    )


@pytest.mark.parametrize("name", ["README.md", "readme.md", "Readme.rst", "README.txt", "README", "ReadMe.MD"])
def test_readme_detected_in_any_case(tmp_path, name):
    write(tmp_path, {name: README, "main.py": "print(1)\n"})
    (record,) = collect_repos("local", str(tmp_path)).records
    assert record.readme == README
    assert find_readme(record.file_tree) == name


@pytest.mark.parametrize(
    "tree, expected",
    [
        (("README.rst", "readme.md"), "readme.md"),
        (("README.txt", "README"), "README.txt"),
        (("docs/README.md", "main.py"), None),
        (("README.markdown",), None),
    ],
)
def test_readme_preference_and_root_only(tree, expected):
    assert find_readme(tree) == expected


def test_scan_repository_without_readme_still_describes_it(tmp_path):
    write(tmp_path / "tool", {"Cargo.toml": "[package]\nname='tool'\n", "src/main.rs": "fn main() {}\n"})
    snapshot = scan_repository(tmp_path / "tool")
    assert snapshot.readme_path is None
    assert (snapshot.repo, snapshot.owner, snapshot.language, snapshot.project_type) == ("tool", "", "Rust", "rust_crate")
    assert [k.path for k in snapshot.key_files] == ["Cargo.toml", "src/main.rs"]
    sample_input = snapshot.sample_input()
    assert (sample_input.file_tree, sample_input.project_type) == (("Cargo.toml", "src/main.rs"), "rust_crate")
    assert sample_input.key_files == snapshot.key_files
    with pytest.raises(ValueError, match=r"is not a directory"):
        scan_repository(tmp_path / "tool" / "Cargo.toml")


# --- key files ----------------------------------------------------------------------------------


def test_key_file_order_manifests_first_then_shallow_entry_points():
    tree = (
        "README.md", "LICENSE", "src/pkg/__init__.py", "pkg/__init__.py", "tests/__init__.py", "cli.py",
        "pkg_tests/__init__.py", "testing/__init__.py",
        "cmd/tool/main.go", "web/package.json", "Dockerfile", "pyproject.toml", "a/b/package.json",
        "a/b/c/main.py", "Makefile", "docs/main.py", "app/main.py", "x.csproj",
    )
    assert rank_key_file_paths(tree) == [
        "pyproject.toml", "x.csproj", "Makefile", "Dockerfile", "web/package.json",
        "cli.py", "app/main.py", "pkg/__init__.py", "cmd/tool/main.go", "src/pkg/__init__.py",
    ]


@pytest.mark.parametrize("tree, project, expected", [
    # a Python project with no manifest: its code in server/ and client/ is what the model should see
    (("README.md", "server/game_server.py", "client/ui.py", "client/net.py", "tests/test_net.py"), None,
     ["client/net.py", "client/ui.py", "server/game_server.py"]),
    # a test fixture's package.json is not the project's manifest, at any depth
    (("test/fixtures/package.json", "fixtures/package.json", "lib/index.js", "index.js"), None,
     ["index.js", "lib/index.js"]),
    # a file named after the project comes before other code; conftest and *_test.go never
    (("util.go", "sniff.go", "sniff_test.go", "conftest.py", "vendor/x/y.go"), "sniff", ["sniff.go", "util.go"]),
])
def test_key_files_rank_representative_code(tree, project, expected):
    assert rank_key_file_paths(tree, project) == expected


def test_key_files_are_capped_in_count_and_size_and_skip_binary(tmp_path):
    files = {
        "README.md": README, "LICENSE": "MIT", "setup.py": "s" * (MAX_KEY_FILE_CHARS + 50),
        "requirements.txt": b"\x00\x01binary", "setup.cfg": b"\xff\xfe not utf-8",
        "package.json": "{}", "Cargo.toml": "", "go.mod": "module x", "pom.xml": "<p/>", "Gemfile": "gem",
        "main.py": "print(1)",
    }
    write(tmp_path, files)
    key_files = read_key_files(tmp_path, walk_files(tmp_path))
    assert len(key_files) == MAX_KEY_FILES == 6
    assert [k.path for k in key_files] == ["setup.py", "package.json", "Cargo.toml", "go.mod", "pom.xml", "Gemfile"]
    assert key_files[0].content == "s" * MAX_KEY_FILE_CHARS


def test_key_file_cut_inside_a_multibyte_character_still_decodes(tmp_path):
    write(tmp_path, {"main.py": "é" * 10})
    assert read_key_files(tmp_path, ("main.py",), max_chars=3) == (KeyFile(path="main.py", content="ééé"),)


# --- installed ----------------------------------------------------------------------------------

LONG_MD = "# pkg-a\n\n" + "Pkg A does things. " * 40 + "\n\n## Usage\n\n```python\nimport pkg_a\n```\n"


def fake_dist(site: Path, name: str, version: str, headers: list[str], body: str, files: dict[str, str]) -> None:
    dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
    metadata = "\n".join(["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *headers]) + "\n\n" + body
    write(site, {f"{dist_info}/METADATA": metadata, **files})
    record_lines = [f"{path},," for path in [*files, f"{dist_info}/METADATA", f"{dist_info}/RECORD"]]
    write(site, {f"{dist_info}/RECORD": "\n".join(record_lines) + "\n"})


@pytest.fixture
def site(tmp_path) -> Path:
    site = tmp_path / "site-packages"
    fake_dist(site, "pkg-a", "1.0", [
        "Project-URL: Documentation, https://pkg-a.readthedocs.io",
        "Project-URL: Source, https://github.com/octo/pkg-a/tree/main",
        "License-Expression: MIT", "Description-Content-Type: text/markdown",
    ], LONG_MD, {
        "pkg_a/__init__.py": '"""Pkg A."""\n', "pkg_a/__pycache__/x.cpython-311.pyc": "",
        "../../../bin/pkg-a": "#!python\n",
    })
    fake_dist(site, "pkg-b", "2.0", ["Description-Content-Type: text/x-rst"], "Pkg B\n=====\n\n" + "text " * 200, {})
    fake_dist(site, "pkg-c", "0.1", ["Description-Content-Type: text/markdown"], "# short\n", {})
    fake_dist(site, "pkg-d", "0.2", [
        "Author: Dee Developer", "Home-page: https://pkg-d.example.org",
        "Classifier: License :: OSI Approved :: BSD License",
    ], LONG_MD.replace("pkg-a", "pkg-d"), {"pkg_d.py": ""})
    fake_dist(site, "pkg-e", "1.0", [
        "Project-URL: Homepage, https://github.com/octo/pkg-a", "Description-Content-Type: text/markdown",
    ], LONG_MD, {})
    return site


def test_installed_reads_markdown_descriptions_from_search_path(site):
    result = collect_repos("installed", str(site))
    assert [(r.repo, r.repo_url, r.owner, r.license) for r in result.records] == [
        ("pkg-a", "https://github.com/octo/pkg-a", "octo", "MIT"),
        ("pkg-d", "pypi:pkg-d", "Dee Developer", "BSD License"),
    ]
    assert [(s.item, s.reason) for s in result.skipped] == [
        ("pkg-b", "description is text/x-rst and not markdown"),
        ("pkg-c", "description has 7 chars, fewer than 500"),
        ("pkg-e", "duplicate repo_url 'https://github.com/octo/pkg-a'; kept pkg-a"),
    ]


def test_installed_record_never_leaks_the_readme_into_its_input(site):
    record = collect_repos("installed", str(site), limit=1).records[0]
    assert record.readme == LONG_MD.strip()
    assert record.file_tree == ("bin/pkg-a", "pkg_a-1.0.dist-info/METADATA", "pkg_a/__init__.py")
    assert [k.path for k in record.key_files] == ["pkg_a-1.0.dist-info/METADATA", "pkg_a/__init__.py"]
    metadata = record.key_files[0].content
    assert "Name: pkg-a" in metadata and "Pkg A does things" not in metadata and "## Usage" not in metadata
    assert (record.language, record.project_type, record.source) == ("Python", "python_cli", "installed")


def test_installed_default_environment_has_demo_sized_data():
    # pydantic ships a Markdown description in this environment; a few dozen records feed the demo.
    result = collect_repos("installed")
    names = {record.repo for record in result.records}
    assert "pydantic" in names and len(result.records) >= 30
    assert all(record.repo_url != "" and record.readme.strip() for record in result.records)


# --- project types and urls ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "tree, key_files, language, expected",
    [
        (("README.md", "docs/guide.md"), (), None, "documentation"),
        (("LICENSE",), (), None, "unknown"),
        (("README.md", "list.md"), (), "Markdown/Docs", "documentation"),
        (("a.ipynb", "b.ipynb", "util.py", "x.py"), (), None, "data_science"),
        (("analysis.ipynb",), (), "Jupyter Notebook", "data_science"),
        (("android/app/src/main/AndroidManifest.xml", "lib/main.dart"), (), None, "mobile_app"),
        (("App.xcodeproj/project.pbxproj", "App/main.m"), (), "Objective-C", "mobile_app"),
        (("manage.py", "shop/views.py"), (), None, "web_application"),
        (("package.json", "src/App.tsx"), (), None, "web_application"),
        (("package.json", "server.js"), (KeyFile(path="package.json", content='{"dependencies": {"express": "4"}}'),),
         None, "web_application"),
        (("package.json", "index.js"), (KeyFile(path="package.json", content='{"name": "x"}'),), None,
         "javascript_library"),
        (("pyproject.toml", "pkg/__init__.py"), (), None, "python_package"),
        (("pyproject.toml", "pkg/__init__.py"), (KeyFile(path="pyproject.toml", content="[project.scripts]\nx='a:b'"),),
         None, "python_cli"),
        (("pkg/__main__.py", "pkg/core.py"), (), None, "python_cli"),
        (("script.py", "util.py"), (), None, "python_project"),
        (("Cargo.toml", "src/main.rs"), (), None, "rust_crate"),
        (("go.mod", "main.go"), (), None, "go_module"),
        (("pom.xml", "src/main/java/A.java"), (), None, "java_project"),
        (("build.gradle.kts", "src/Main.kt"), (), None, "java_project"),
        (("App.sln", "App/App.csproj", "App/Program.cs"), (), None, "dotnet_project"),
        (("composer.json", "src/index.php"), (), None, "php_project"),
        (("Gemfile", "lib/x.rb"), (), None, "ruby_project"),
        (("CMakeLists.txt", "src/a.cpp", "src/a.hpp"), (), None, "c_cpp_project"),
        (("Package.swift", "Sources/X/X.swift"), (), None, "apple_project"),
        (("run.sh",), (), None, "unknown"),
        (("main.py",), (), "Go", "go_module"),  # a given language wins over the tree
    ],
)
def test_detect_project_type(tree, key_files, language, expected):
    assert detect_project_type(tree, key_files, language) == expected


@pytest.mark.parametrize(
    "tree, expected",
    [(("a.py", "b.js", "c.js"), "JavaScript"), (("a.py", "b.go"), "Go"), (("x.md", "Makefile"), None)],
)
def test_guess_language_majority_then_alphabetical(tree, expected):
    assert guess_language(tree) == expected


def test_skipped_is_a_plain_value():
    assert Skipped("line 1", "why") == Skipped(item="line 1", reason="why")
