"""`repo_facts`: what a README may state, read from hand-made repositories of each ecosystem."""

from __future__ import annotations

import pytest

from moxi_pipeline.readme.facts import repo_facts
from moxi_pipeline.readme.evidence import Evidence
from moxi_pipeline.readme.grounding import ground_readme
from moxi_pipeline.readme.outline import render_template
from moxi_pipeline.records import KeyFile, RepoFacts, RepoRecord


def record(name: str, files: dict[str, str], tree=(), language=None, license=None, url=None) -> RepoRecord:
    """A repository whose key files are `files` and whose tree is those files plus `tree`."""
    return RepoRecord(
        repo_url=url or f"https://github.com/octo/{name}", owner="octo", repo=name, readme="# x\n",
        file_tree=tuple(sorted({*tree, *files})), key_files=tuple(KeyFile(path=p, content=c) for p, c in files.items()),
        language=language, license=license, source="jsonl",
    )


def expected(name: str, language: str, **fields) -> RepoFacts:
    return RepoFacts(name=name, language=language, repo_url=f"https://github.com/octo/{name}", **fields)


MIT_TEXT = """MIT License

Copyright (c) 2024 Octo Cat

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

PYPROJECT = """[project]
name = "fetcher"
description = "Fetch URLs."
requires-python = ">=3.9"
license = {text = "MIT"}
dependencies = ["requests>=2", "click"]

[project.scripts]
fetch = "fetcher.cli:main"
"""
SETUP_CFG = """[metadata]
name = cfgtool
description = Reads configs.
license = BSD-3-Clause

[options]
python_requires = >=3.8
install_requires =
    pyyaml>=6
    requests

[options.entry_points]
console_scripts =
    cfgtool = cfgtool.main:run
"""
SETUP_PY = """from setuptools import setup
setup(
    name='oldpkg',
    description='An old package.',
    license='Apache-2.0',
    python_requires='>=3.6',
    entry_points={'console_scripts': ['oldpkg = oldpkg.cli:main']},
)
"""
PACKAGE_BIN = """{
  "name": "greet-cli",
  "description": "Say hello.",
  "license": "MIT",
  "bin": {"greet": "bin/greet.js"},
  "scripts": {"test": "jest", "build": "tsc"},
  "engines": {"node": ">=18"},
  "dependencies": {"express": "^4"}
}
"""
PACKAGE_PRIVATE = """{
  "name": "site",
  "private": true,
  "scripts": {"start": "vite", "dev": "vite dev", "lint": "eslint ."},
  "dependencies": {"react": "^18"}
}
"""
CARGO_BIN = """[package]
name = "ripper"
version = "0.1.0"
description = "Rip files."
license = "MIT OR Apache-2.0"
rust-version = "1.70"

[dependencies]
clap = "4"
serde = { version = "1" }
"""
CARGO_LIB = '[package]\nname = "smallvec2"\nversion = "0.1.0"\ndescription = "Small vectors."\nlicense = "MIT"\n'
GEMSPEC = """Gem::Specification.new do |spec|
  spec.name = "gemmy"
  spec.summary = "Gems made easy."
  spec.license = "MIT"
  spec.executables = ["gemmy"]
  spec.add_dependency "thor"
  spec.add_runtime_dependency 'rails'
end
"""
COMPOSER = """{
    "name": "octo/phpkit",
    "description": "PHP tools.",
    "license": "MIT",
    "require": {"php": ">=8.1", "ext-json": "*", "laravel/framework": "^10"}
}
"""
POM = """<project>
  <parent><groupId>org.springframework.boot</groupId><artifactId>spring-boot-starter-parent</artifactId></parent>
  <groupId>com.octo</groupId>
  <artifactId>jlib</artifactId>
  <description>Java library.</description>
  <licenses><license><name>Apache-2.0</name></license></licenses>
  <dependencies>
    <dependency><groupId>org.springframework.boot</groupId><artifactId>spring-boot-starter-web</artifactId></dependency>
  </dependencies>
</project>
"""
GRADLE = """plugins { id 'java' }
dependencies {
    implementation 'com.google.guava:guava:32.0'
    implementation("org.springframework.boot:spring-boot-starter:3.0")
}
"""
CSPROJ = """<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <PackageId>Octo.NetLib</PackageId>
    <Description>A .NET library.</Description>
    <PackageLicenseExpression>MIT</PackageLicenseExpression>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="Newtonsoft.Json" Version="13.0.1" />
  </ItemGroup>
</Project>
"""
CSPROJ_APP = '<Project Sdk="Microsoft.NET.Sdk">\n  <PropertyGroup>\n    <OutputType>Exe</OutputType>\n  </PropertyGroup>\n</Project>\n'
PUBSPEC = "name: dartpkg\ndescription: A Dart package.\ndependencies:\n  flutter:\n    sdk: flutter\n  http: ^1.0.0\n"
PUBSPEC_APP = "name: flutter_app\ndescription: An app.\npublish_to: none\ndependencies:\n  flutter:\n    sdk: flutter\n"
POETRY = """[tool.poetry]
name = "poet"
description = "Poetry project."
license = "MIT"

[tool.poetry.dependencies]
python = "^3.10"
fastapi = "^0.100"

[tool.poetry.scripts]
poet = "poet.cli:app"
"""
MAKEFILE = "PY ?= python\n.PHONY: test\ninstall:\n\tpip install -e .\ntest: install\n\tpytest\nlint:\n\truff .\n%.o: %.c\n\tcc $<\n"

# (id, record, the facts it must give: every field, so a stray fact fails too)
ECOSYSTEMS = [
    ("pyproject", record("fetcher", {"pyproject.toml": PYPROJECT},
                         ("fetcher/__init__.py", "fetcher/__main__.py", "tests/test_cli.py"), "Python"),
     expected("fetcher", "Python", package="fetcher", description="Fetch URLs.", ecosystem="python",
              requires="Python >=3.9", install=("pip install fetcher",), commands=("fetch", "python -m fetcher"),
              test_command="pytest", license="MIT", dependencies=("requests", "click"), frameworks=("Click",),
              tests=True, python_packages=("fetcher",))),
    ("setup.cfg", record("cfgtool", {"setup.cfg": SETUP_CFG}, ("cfgtool/__init__.py",), "Python"),
     expected("cfgtool", "Python", package="cfgtool", description="Reads configs.", ecosystem="python",
              requires="Python >=3.8", install=("pip install cfgtool",), commands=("cfgtool",),
              license="BSD-3-Clause", dependencies=("pyyaml", "requests"), python_packages=("cfgtool",))),
    ("setup.py", record("oldpkg", {"setup.py": SETUP_PY}, ("oldpkg/__init__.py",), "Python"),
     expected("oldpkg", "Python", package="oldpkg", description="An old package.", ecosystem="python",
              requires="Python >=3.6", install=("pip install oldpkg",), commands=("oldpkg",), license="Apache-2.0",
              python_packages=("oldpkg",))),
    # a package with `bin` installs globally; its scripts run in the README's order (build before test)
    ("package.json bin", record("greet-cli", {"package.json": PACKAGE_BIN}, ("bin/greet.js",), "JavaScript"),
     expected("greet-cli", "JavaScript", package="greet-cli", description="Say hello.", ecosystem="node",
              requires="Node.js >=18", install=("npm install -g greet-cli",),
              commands=("greet", "npm run build", "npm test"), license="MIT", dependencies=("express",),
              frameworks=("Express",))),
    # a private package is not on npm: `npm install` in the clone, and no package name to link to
    ("package.json private", record("site", {"package.json": PACKAGE_PRIVATE}, ("src/App.jsx",), "JavaScript"),
     expected("site", "JavaScript", ecosystem="node", install=("npm install",),
              commands=("npm start", "npm run dev", "npm run lint"), dependencies=("react",), frameworks=("React",))),
    ("Cargo binary", record("ripper", {"Cargo.toml": CARGO_BIN}, ("src/main.rs",), "Rust"),
     expected("ripper", "Rust", package="ripper", description="Rip files.", ecosystem="rust", requires="Rust 1.70",
              install=("cargo install ripper",), commands=("ripper",), license="MIT OR Apache-2.0",
              dependencies=("clap", "serde"), frameworks=("clap", "Serde"))),
    ("Cargo library", record("smallvec2", {"Cargo.toml": CARGO_LIB}, ("src/lib.rs",), "Rust"),
     expected("smallvec2", "Rust", package="smallvec2", description="Small vectors.", ecosystem="rust",
              install=("cargo add smallvec2",), license="MIT")),
    # a workspace root has no [package]: nothing to install by name, build it
    ("Cargo workspace", record("ws", {"Cargo.toml": '[workspace]\nmembers = ["core", "cli"]\n'},
                               ("core/src/lib.rs", "cli/src/main.rs"), "Rust"),
     expected("ws", "Rust", ecosystem="rust", install=("cargo build --release",))),
    ("go.mod cmd", record("gotool", {"go.mod": "module github.com/octo/gotool\n\ngo 1.21\n\nrequire (\n"
                                               "\tgithub.com/spf13/cobra v1.8.0\n)\n"},
                          ("cmd/gotool/main.go", "internal/x.go"), "Go"),
     expected("gotool", "Go", package="github.com/octo/gotool", ecosystem="go", requires="Go 1.21",
              install=("go install github.com/octo/gotool/cmd/gotool@latest",), commands=("gotool",),
              dependencies=("github.com/spf13/cobra",), frameworks=("Cobra",))),
    ("go.mod library", record("golib", {"go.mod": "module github.com/octo/golib\n\ngo 1.22\n"},
                              ("golib.go", "golib_test.go"), "Go"),
     expected("golib", "Go", package="github.com/octo/golib", ecosystem="go", requires="Go 1.22",
              install=("go get github.com/octo/golib",), test_command="go test ./...", tests=True)),
    ("go.mod main.go", record("gomain", {"go.mod": "module github.com/octo/gomain\n\ngo 1.22\n",
                                         "main.go": "package main\n\nfunc main() {}\n"}, (), "Go"),
     expected("gomain", "Go", package="github.com/octo/gomain", ecosystem="go", requires="Go 1.22",
              install=("go install github.com/octo/gomain@latest",))),
    ("gemspec", record("gemmy", {"gemmy.gemspec": GEMSPEC}, ("lib/gemmy.rb", "exe/gemmy", "spec/gemmy_spec.rb"), "Ruby"),
     expected("gemmy", "Ruby", package="gemmy", description="Gems made easy.", ecosystem="ruby",
              install=("gem install gemmy",), commands=("gemmy",), test_command="bundle exec rspec", license="MIT",
              dependencies=("thor", "rails"), frameworks=("Ruby on Rails",), tests=True)),
    ("composer.json", record("phpkit", {"composer.json": COMPOSER},
                             ("src/Kit.php", "tests/KitTest.php", "phpunit.xml.dist"), "PHP"),
     expected("phpkit", "PHP", package="octo/phpkit", description="PHP tools.", ecosystem="php", requires="PHP >=8.1",
              install=("composer require octo/phpkit",), test_command="vendor/bin/phpunit", license="MIT",
              dependencies=("laravel/framework",), frameworks=("Laravel",), tests=True)),
    # the parent's groupId/artifactId are not the project's
    ("pom.xml", record("jlib", {"pom.xml": POM}, ("src/main/java/Jlib.java", "src/test/java/JlibTest.java"), "Java"),
     expected("jlib", "Java", package="jlib", description="Java library.", ecosystem="java", install=("mvn install",),
              test_command="mvn test", license="Apache-2.0", dependencies=("spring-boot-starter-web",),
              frameworks=("Spring Boot",), tests=True)),
    ("build.gradle", record("gapp", {"build.gradle": GRADLE}, ("gradlew", "src/main/java/App.java"), "Java"),
     expected("gapp", "Java", ecosystem="java", install=("./gradlew build",),
              dependencies=("guava", "spring-boot-starter"), frameworks=("Spring Boot",))),
    ("csproj package", record("NetLib", {"src/NetLib/NetLib.csproj": CSPROJ}, (), "C#"),
     expected("NetLib", "C#", package="Octo.NetLib", description="A .NET library.", ecosystem="dotnet",
              install=("dotnet add package Octo.NetLib",), license="MIT", dependencies=("Newtonsoft.Json",))),
    ("csproj app", record("netapp", {"App.csproj": CSPROJ_APP}, ("Program.cs",), "C#"),
     expected("netapp", "C#", ecosystem="dotnet", install=("dotnet build",))),
    ("pubspec", record("dartpkg", {"pubspec.yaml": PUBSPEC}, ("lib/dartpkg.dart",), "Dart"),
     expected("dartpkg", "Dart", package="dartpkg", description="A Dart package.", ecosystem="dart",
              install=("dart pub add dartpkg",), dependencies=("http",))),
    ("pubspec unpublished", record("flutter_app", {"pubspec.yaml": PUBSPEC_APP}, ("lib/main.dart",), "Dart"),
     expected("flutter_app", "Dart", description="An app.", ecosystem="dart", install=("dart pub get",))),
    # no manifest: the language names the ecosystem, the Dockerfile gives the only install command
    ("Dockerfile only", record("svc", {"Dockerfile": "FROM python:3.12\n"}, ("app.py",), "Python"),
     expected("svc", "Python", ecosystem="python", install=("docker build -t svc .",))),
    ("requirements + Dockerfile", record("Web_App", {"Dockerfile": "FROM python:3.12\n", "requirements.txt": "flask\n"},
                                         ("app.py",), "Python"),
     expected("Web_App", "Python", ecosystem="python", install=("pip install -r requirements.txt", "docker build -t web_app ."),
              dependencies=("flask",), frameworks=("Flask",))),
    # a folder called "repo" gives way to the manifest's name; Makefile targets, CI, docs and the rest from the tree
    ("poetry + tree", record("repo", {"pyproject.toml": POETRY, "Makefile": MAKEFILE},
                             ("src/poet/__init__.py", "src/poet/__main__.py", "tests/test_poet.py",
                              ".github/workflows/ci.yml", ".travis.yml", "docs/index.md", "examples/demo.py",
                              "CONTRIBUTING.md", "CHANGELOG.md"), "Python"),
     RepoFacts(name="poet", package="poet", description="Poetry project.", ecosystem="python", language="Python",
               repo_url="https://github.com/octo/repo", requires="Python ^3.10", install=("pip install poet",),
               commands=("poet", "python -m poet", "make install", "make test"), test_command="make test",
               license="MIT", dependencies=("fastapi",), frameworks=("FastAPI",), tests=True, docs_dir="docs",
               ci=("GitHub Actions", "Travis CI"), examples_dir="examples", contributing_file="CONTRIBUTING.md",
               changelog_file="CHANGELOG.md", python_packages=("poet",))),
    # a Go project's docs site package.json does not make it a Node package
    ("go with docs package.json", record("gosite", {"go.mod": "module github.com/octo/gosite\n\ngo 1.21\n",
                                                    "docs/package.json": '{"name": "docs-site", "private": true}'},
                                         ("lib.go",), "Go"),
     expected("gosite", "Go", package="github.com/octo/gosite", ecosystem="go", requires="Go 1.21",
              install=("go get github.com/octo/gosite",), docs_dir="docs")),
]


@pytest.mark.parametrize("repo, facts", [case[1:] for case in ECOSYSTEMS], ids=[case[0] for case in ECOSYSTEMS])
def test_repo_facts_per_ecosystem(repo, facts):
    assert repo_facts(repo) == facts


@pytest.mark.parametrize("repo", [case[1] for case in ECOSYSTEMS], ids=[case[0] for case in ECOSYSTEMS])
def test_the_template_of_every_ecosystem_survives_grounding_untouched(repo):
    # Rule: a README made of facts only states what the grounding pass accepts; if the two disagree,
    # grounding would cut the install command the facts themselves gave.
    facts = repo_facts(repo)
    template = render_template(facts, repo.project_type)
    grounded, report = ground_readme(template, Evidence.of(facts, repo.file_tree, repo.key_files))
    assert (grounded, report.removed) == (template, [])


@pytest.mark.parametrize(
    "declared, manifest_license, license_text, license",
    [
        (None, None, MIT_TEXT, "MIT"),  # identify's matcher reads the LICENSE text
        (None, None, MIT_TEXT.replace("2024 Octo Cat", "2019-2024 Someone Else"), "MIT"),  # a copyright line differs
        (None, None, "All rights reserved. Do not copy.", None),  # no SPDX license: no license fact
        (None, "Apache-2.0", MIT_TEXT, "Apache-2.0"),  # the manifest says it before the text does
        ("GPL-3.0", "Apache-2.0", MIT_TEXT, "GPL-3.0"),  # the collector's declared license first
        (None, "See LICENSE file in the repository root for the full terms and conditions here", MIT_TEXT, "MIT"),
    ],
)
def test_license_comes_from_declared_then_manifest_then_license_text(declared, manifest_license, license_text, license):
    pyproject = '[project]\nname = "lic"\n' + (f'license = "{manifest_license}"\n' if manifest_license else "")
    facts = repo_facts(record("lic", {"pyproject.toml": pyproject, "LICENSE": license_text}, language="Python",
                              license=declared))
    assert (facts.license, facts.license_file) == (license, "LICENSE")


def test_license_file_with_an_extension_is_read():
    facts = repo_facts(record("lic", {"LICENSE.md": MIT_TEXT}, ("main.py",), "Python"))
    assert (facts.license, facts.license_file) == ("MIT", "LICENSE.md")


@pytest.mark.parametrize(
    "path, text, name, description, license",
    [
        # key files are capped, so a manifest arrives cut mid-table: what parsed before the cut is kept
        ("pyproject.toml", '[project]\nname = "cut"\ndescription = "Cut short."\ndependencies = [\n    "requests",\n    "cli',
         "cut", "Cut short.", None),
        ("Cargo.toml", '[package]\nname = "cutrs"\ndescription = "Cut TOML."\n\n[dependencies]\nserde = { version = "1", fea',
         "cutrs", "Cut TOML.", None),
        ("package.json", '{\n  "name": "cutjs",\n  "description": "Cut JSON.",\n  "license": "ISC",\n  "dependencies": {\n'
         '    "left-pad": "^1.0",\n    "name": "not-top-level",\n    "expr', "cutjs", "Cut JSON.", "ISC"),
        # 4-space and tab indentation (composer's and many editors' default) are top level too
        ("package.json", '{\n    "name": "four",\n    "description": "Four \\"spaces\\".",\n    "dependencies": {\n'
         '        "a": "1",\n        "b', "four", 'Four "spaces".', None),
        ("package.json", '{\n\t"name": "tabbed",\n\t"dependencies": {\n\t\t"name": "inner",\n\t\t"a', "tabbed", None, None),
        ("composer.json", '{\n    "name": "octo/cutphp",\n    "license": "MIT",\n    "require": {\n        "php": ">=8', "octo/cutphp",
         None, "MIT"),
    ],
    ids=["pyproject", "Cargo", "package.json 2 spaces", "package.json 4 spaces", "package.json tab", "composer 4 spaces"],
)
def test_truncated_manifests_still_give_the_name(path, text, name, description, license):
    language = {"pyproject.toml": "Python", "Cargo.toml": "Rust", "package.json": "JavaScript", "composer.json": "PHP"}[path]
    facts = repo_facts(record("cut", {path: text}, language=language))
    assert (facts.package, facts.description, facts.license) == (name, description, license)


def test_a_truncated_private_package_json_is_still_private():
    # "private": true is a boolean: losing it would tell users to `npm install` a package that is not on npm
    text = '{\n  "name": "internal-site",\n  "private": true,\n  "dependencies": {\n    "react": "^18",\n    "vi'
    facts = repo_facts(record("internal-site", {"package.json": text}, language="TypeScript"))
    assert (facts.package, facts.install) == (None, ("npm install",))


@pytest.mark.parametrize(
    "url, repo_url",
    [("https://github.com/octo/tool", "https://github.com/octo/tool"),
     ("https://gitlab.com/octo/tool", "https://gitlab.com/octo/tool"),
     ("file:///home/me/tool", None),  # a local folder has no page to link to
     ("https://example.com/octo/tool", None)],
)
def test_repo_url_is_kept_only_for_a_hosted_repository(url, repo_url):
    assert repo_facts(record("tool", {}, ("tool.py",), url=url)).repo_url == repo_url


def test_facts_of_a_scanned_folder(tmp_path):
    # `moxi generate` passes a RepoSnapshot, which has no declared license (this raised AttributeError)
    from moxi_pipeline.collect.local_repos import scan_repository

    root = tmp_path / "renamer"
    (root / "renamer").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "renamer"\ndescription = "Rename files in bulk."\n'
                                         'license = "MIT"\n\n[project.scripts]\nrenamer = "renamer.cli:main"\n')
    (root / "renamer" / "__init__.py").write_text("")
    (root / "renamer" / "cli.py").write_text("def main():\n    pass\n")
    (root / "LICENSE").write_text(MIT_TEXT)
    facts = repo_facts(scan_repository(root))
    assert facts == RepoFacts(
        name="renamer", package="renamer", description="Rename files in bulk.", ecosystem="python", language="Python",
        install=("pip install renamer",), commands=("renamer",), license="MIT", license_file="LICENSE",
        python_packages=("renamer",),
    )


METADATA = """Metadata-Version: 2.4
Name: fetcher
Version: 1.0
Summary: Fetch URLs.
License-Expression: MIT
Requires-Python: >=3.9
Requires-Dist: requests>=2
Requires-Dist: pytest; extra == "test"
"""


def test_an_installed_distributions_metadata_is_its_manifest():
    # the `installed` source's key file: the built pyproject, so the demo's packages get an install command
    facts = repo_facts(record("fetcher", {"fetcher-1.0.dist-info/METADATA": METADATA}, language="Python"))
    assert (facts.package, facts.description, facts.license, facts.requires, facts.install, facts.dependencies) == (
        "fetcher", "Fetch URLs.", "MIT", "Python >=3.9", ("pip install fetcher",), ("requests",))


def test_setup_py_console_scripts_written_as_an_ini_string_are_the_projects_commands():
    # seen in a dev repository: entry_points='''[console_scripts] tool=tool:cli''' and a name read from a module,
    # so the facts gave no command and the grounding pass cut the README's true `tool --help`
    setup_py = ("from setuptools import setup\nfrom constants import C\nsetup(\n    name=C.NAME,\n"
                "    entry_points='''\n        [console_scripts]\n        vault=vault:cli\n    ''',\n)\n")
    facts = repo_facts(record("vault", {"setup.py": setup_py}, ("vault.py", "setup.py"), "Python"))
    assert facts.commands == ("vault",)
