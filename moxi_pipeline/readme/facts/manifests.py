"""Read package manifests: one parser per file kind, each returning a `Manifest`.

Key files are capped (4,000 characters), so a manifest may arrive cut mid-table. TOML is parsed
with `tomllib` after dropping trailing lines until it parses; JSON falls back to reading its top-level
string fields with a regular expression. A manifest that yields nothing still says which ecosystem the
repository belongs to.

A manifest is untrusted input of any shape (`[project] scripts = 5`, Cargo `bin = 5`, `project = 5`, YAML
tags, XML entities): a value of the wrong type is left out and named in `Manifest.notes`, and a parser that
fails anyway yields an empty Manifest of its ecosystem with a note, so one odd file never stops a run.
"""

from __future__ import annotations

import configparser
import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

import tomllib
import yaml


@dataclass(frozen=True)
class Manifest:
    ecosystem: str  # python | node | rust | go | ruby | php | java | dotnet | dart
    path: str
    name: str | None = None
    description: str | None = None
    license: str | None = None
    binaries: tuple[str, ...] = ()  # commands the package installs
    scripts: tuple[str, ...] = ()  # npm scripts, composer scripts
    dependencies: tuple[str, ...] = ()
    requires: str | None = None  # the runtime it needs: "Python >=3.9", "Node.js >=18", "Go 1.21"
    private: bool = False  # package.json "private": true, a Cargo workspace root: not installable by name
    group: str | None = None  # Maven groupId
    notes: tuple[str, ...] = ()  # what could not be read: "pyproject.toml: [project] scripts is int, not a table"


def _toml(text: str) -> dict:
    lines = text.split("\n")
    for cut in range(len(lines), 0, -1):
        try:
            return tomllib.loads("\n".join(lines[:cut]))
        except tomllib.TOMLDecodeError:
            continue
    return {}


def _json(text: str) -> dict:
    try:
        value = json.loads(text)
        return value if isinstance(value, dict) else {}
    except json.JSONDecodeError:  # cut at the key-file cap: keep the top-level strings and booleans we can see
        first_key = re.search(r'^([ \t]*)"', text, re.MULTILINE)  # its indent is the top level's: 2, 4 spaces or a tab
        indent = re.escape(first_key.group(1)) if first_key else " {2}"
        found = re.findall(rf'^{indent}"(\w+)":\s*("(?:[^"\\\n]|\\.)*"|true|false)', text, re.MULTILINE)
        return {key: json.loads(value) for key, value in found}


def _str(value) -> str | None:
    if isinstance(value, dict):  # pyproject's license = {text = "MIT"} or {file = "LICENSE"}
        value = value.get("text")
    return value.strip() if isinstance(value, str) and value.strip() else None


def _table(data: dict, key: str, notes: list[str], where: str) -> dict:
    """`data[key]` when it is a table (dict); {} when absent; {} and a note when it is anything else."""
    value = data.get(key)
    if value is None or isinstance(value, dict):
        return value or {}
    notes.append(f"{where}{key} is {type(value).__name__}, not a table")
    return {}


def _requirement_name(spec: str) -> str:
    return re.split(r"[\s<>=!~;\[(@]", spec.strip(), maxsplit=1)[0]


def _names(specs) -> tuple[str, ...]:
    """Names from a table of name -> spec, or a list of "name>=1.0" strings; anything else gives none."""
    if isinstance(specs, dict):
        return tuple(name for name in specs if isinstance(name, str) and name.strip() and name.lower() != "python")
    if not isinstance(specs, (list, tuple)):
        return ()
    return tuple(name for spec in specs if isinstance(spec, str) and (name := _requirement_name(spec)))


def parse_pyproject(path: str, text: str) -> Manifest:
    data, notes = _toml(text), []
    project = _table(data, "project", notes, f"{path}: ")
    poetry = _table(_table(data, "tool", notes, f"{path}: "), "poetry", notes, f"{path}: [tool] ")
    poetry_deps = _table(poetry, "dependencies", notes, f"{path}: [tool.poetry] ")
    python = _str(project.get("requires-python")) or _str(poetry_deps.get("python"))
    scripts = _table(project, "scripts", notes, f"{path}: [project] ") or _table(poetry, "scripts", notes, f"{path}: [tool.poetry] ")
    return Manifest(
        "python", path,
        name=_str(project.get("name")) or _str(poetry.get("name")),
        description=_str(project.get("description")) or _str(poetry.get("description")),
        license=_str(project.get("license")) or _str(poetry.get("license")),
        binaries=_names(scripts),
        dependencies=_names(project.get("dependencies")) or _names(poetry_deps),
        requires=f"Python {python}" if python else None, notes=tuple(notes),
    )


def parse_setup_cfg(path: str, text: str) -> Manifest:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return Manifest("python", path)
    meta = parser["metadata"] if parser.has_section("metadata") else {}
    scripts = parser.get("options.entry_points", "console_scripts", fallback="")
    requires = parser.get("options", "install_requires", fallback="")
    python = parser.get("options", "python_requires", fallback="").strip()
    return Manifest(
        "python", path, name=_str(meta.get("name")), description=_str(meta.get("description")),
        license=_str(meta.get("license")),
        binaries=tuple(line.split("=")[0].strip() for line in scripts.splitlines() if "=" in line),
        dependencies=_names(requires.splitlines()), requires=f"Python {python}" if python else None,
    )


def _py_kwarg(text: str, key: str) -> str | None:
    match = re.search(rf"\b{key}\s*=\s*['\"]([^'\"]+)['\"]", text)
    return match.group(1).strip() if match else None


def parse_setup_py(path: str, text: str) -> Manifest:
    scripts = re.findall(r"['\"]\s*([\w.-]+)\s*=\s*[\w.]+:\w+", text)
    # entry_points as an INI string: "[console_scripts]" then "name=module:function" lines (no quote before)
    scripts += re.findall(r"^\s*([\w.-]+)\s*=\s*[\w.]+:\w+\s*$", text, re.MULTILINE)
    python = _py_kwarg(text, "python_requires")
    return Manifest(
        "python", path, name=_py_kwarg(text, "name"), description=_py_kwarg(text, "description"),
        license=_py_kwarg(text, "license"), binaries=tuple(dict.fromkeys(scripts)),
        requires=f"Python {python}" if python else None,
    )


def parse_metadata(path: str, text: str) -> Manifest:
    """An installed distribution's `*.dist-info/METADATA`: the built form of its pyproject.toml."""
    from email.parser import HeaderParser

    headers = HeaderParser().parsestr(text)
    requires = [spec for spec in headers.get_all("Requires-Dist") or [] if "extra ==" not in spec]
    python = _str(headers.get("Requires-Python"))
    license_field = _str(headers.get("License-Expression")) or _str(headers.get("License"))
    return Manifest(
        "python", path, name=_str(headers.get("Name")), description=_str(headers.get("Summary")),
        license=license_field if license_field and "\n" not in license_field else None,
        dependencies=_names(requires), requires=f"Python {python}" if python else None,
    )


def parse_requirements(path: str, text: str) -> Manifest:
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    return Manifest("python", path, dependencies=_names([line for line in lines if line and not line.startswith("-")]))


def parse_package_json(path: str, text: str) -> Manifest:
    data = _json(text)
    name = _str(data.get("name"))
    bins = data.get("bin")
    if isinstance(bins, str) and name:
        binaries = (name.split("/")[-1],)
    else:
        binaries = tuple(bins) if isinstance(bins, dict) else ()
    engines = data.get("engines") if isinstance(data.get("engines"), dict) else {}
    node = _str(engines.get("node"))
    return Manifest(
        "node", path, name=name, description=_str(data.get("description")), license=_str(data.get("license")),
        binaries=binaries, scripts=tuple(data.get("scripts") or {}) if isinstance(data.get("scripts"), dict) else (),
        dependencies=_names(data.get("dependencies") or {}) if isinstance(data.get("dependencies"), dict) else (),
        requires=f"Node.js {node}" if node else None, private=data.get("private") in (True, "true"),
    )


def parse_cargo(path: str, text: str) -> Manifest:
    data, notes = _toml(text), []
    package = _table(data, "package", notes, f"{path}: ")
    bin_tables = data.get("bin", [])
    if not isinstance(bin_tables, list):
        notes.append(f"{path}: bin is {type(bin_tables).__name__}, not an array of tables")
        bin_tables = []
    bins = tuple(name for b in bin_tables if isinstance(b, dict) and (name := _str(b.get("name"))))
    rust = _str(package.get("rust-version"))
    return Manifest(
        "rust", path, name=_str(package.get("name")), description=_str(package.get("description")),
        license=_str(package.get("license")), binaries=bins,
        dependencies=_names(_table(data, "dependencies", notes, f"{path}: ")),
        requires=f"Rust {rust}" if rust else None, private="package" not in data, notes=tuple(notes),
    )


def parse_go_mod(path: str, text: str) -> Manifest:
    module = re.search(r"^module\s+(\S+)", text, re.MULTILINE)
    version = re.search(r"^go\s+(\S+)", text, re.MULTILINE)
    requires = re.findall(r"^\s*(?:require\s+)?([\w.-]+\.[\w.-]+/\S+)\s+v\S+", text, re.MULTILINE)
    return Manifest(
        "go", path, name=module.group(1) if module else None, dependencies=tuple(requires),
        requires=f"Go {version.group(1)}" if version else None,
    )


def parse_composer(path: str, text: str) -> Manifest:
    data = _json(text)
    require = data.get("require") if isinstance(data.get("require"), dict) else {}
    return Manifest(
        "php", path, name=_str(data.get("name")), description=_str(data.get("description")),
        license=_str(data.get("license")) if not isinstance(data.get("license"), list) else _str((data["license"] or [None])[0]),
        dependencies=tuple(name for name in require if name != "php" and not name.startswith("ext-")),
        requires=f"PHP {require['php']}" if isinstance(require.get("php"), str) else None,
    )


def parse_gemspec(path: str, text: str) -> Manifest:
    def field(key: str) -> str | None:
        match = re.search(rf"\.{key}\s*=\s*['\"]([^'\"]+)['\"]", text)
        return match.group(1).strip() if match else None

    executables = re.findall(r"\.executables\s*=\s*\[([^\]]*)\]", text)
    binaries = tuple(re.findall(r"['\"]([\w.-]+)['\"]", executables[0])) if executables else ()
    return Manifest("ruby", path, name=field("name"), description=field("summary") or field("description"),
                    license=field("license"), binaries=binaries,
                    dependencies=tuple(re.findall(r"add_(?:runtime_)?dependency[\s(]+['\"]([\w.-]+)['\"]", text)))


def parse_gemfile(path: str, text: str) -> Manifest:
    return Manifest("ruby", path, dependencies=tuple(re.findall(r"^\s*gem\s+['\"]([\w.-]+)['\"]", text, re.MULTILINE)))


def _xml_tag(text: str, tag: str) -> str | None:
    match = re.search(rf"<{tag}>\s*([^<]+?)\s*</{tag}>", text)
    return match.group(1) if match else None


def parse_pom(path: str, text: str) -> Manifest:
    own = re.sub(r"<(parent|dependencies|build|dependencyManagement|profiles)>.*?</\1>", "", text, flags=re.DOTALL)
    deps = re.findall(r"<artifactId>\s*([^<]+?)\s*</artifactId>", text[text.find("<dependencies>"):]) \
        if "<dependencies>" in text else []
    return Manifest("java", path, name=_xml_tag(own, "artifactId"), description=_xml_tag(own, "description"),
                    group=_xml_tag(own, "groupId") or _xml_tag(text, "groupId"), dependencies=tuple(deps),
                    license=_xml_tag(text[text.find("<licenses>"):], "name") if "<licenses>" in text else None)


def parse_gradle(path: str, text: str) -> Manifest:
    deps = re.findall(r"(?:implementation|api)\s*\(?\s*['\"]([\w.-]+):([\w.-]+)", text)
    return Manifest("java", path, dependencies=tuple(artifact for _, artifact in deps))


def parse_csproj(path: str, text: str) -> Manifest:
    package_id = _xml_tag(text, "PackageId")
    is_packable = _xml_tag(text, "IsPackable") != "false" and package_id is not None
    return Manifest("dotnet", path, name=package_id or PurePosixPath(path).stem,
                    description=_xml_tag(text, "Description"), license=_xml_tag(text, "PackageLicenseExpression"),
                    dependencies=tuple(re.findall(r'<PackageReference\s+Include="([^"]+)"', text)),
                    private=not is_packable)


def parse_pubspec(path: str, text: str) -> Manifest:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    data = data if isinstance(data, dict) else {}
    deps = data.get("dependencies") if isinstance(data.get("dependencies"), dict) else {}
    return Manifest("dart", path, name=_str(data.get("name")), description=_str(data.get("description")),
                    dependencies=tuple(name for name in deps if isinstance(name, str) and name != "flutter"),
                    private=data.get("publish_to") == "none")


# file name pattern (fnmatch on the base name) -> parser, in the order a tie is broken
PARSERS = (
    ("pyproject.toml", parse_pyproject), ("setup.cfg", parse_setup_cfg), ("setup.py", parse_setup_py),
    ("package.json", parse_package_json), ("Cargo.toml", parse_cargo), ("go.mod", parse_go_mod),
    ("composer.json", parse_composer), ("*.gemspec", parse_gemspec), ("pom.xml", parse_pom),
    ("build.gradle", parse_gradle), ("build.gradle.kts", parse_gradle), ("*.csproj", parse_csproj),
    ("pubspec.yaml", parse_pubspec), ("requirements.txt", parse_requirements), ("Gemfile", parse_gemfile),
    ("METADATA", parse_metadata),
)


ECOSYSTEMS = {
    parse_pyproject: "python", parse_setup_cfg: "python", parse_setup_py: "python", parse_package_json: "node",
    parse_cargo: "rust", parse_go_mod: "go", parse_composer: "php", parse_gemspec: "ruby", parse_pom: "java",
    parse_gradle: "java", parse_csproj: "dotnet", parse_pubspec: "dart", parse_requirements: "python",
    parse_gemfile: "ruby", parse_metadata: "python",
}


def parse_manifest(path: str, text: str) -> Manifest | None:
    """The manifest in `text` when `path` names a manifest kind, else None."""
    import fnmatch

    name = PurePosixPath(path).name
    for pattern, parser in PARSERS:
        if fnmatch.fnmatchcase(name, pattern):
            try:
                return parser(path, text)
            except Exception as error:  # noqa: BLE001 -- any shape we did not foresee: no facts from it, and a note that says so
                return Manifest(ECOSYSTEMS[parser], path, notes=(f"{path}: not read ({type(error).__name__}: {error})",))
    return None


def makefile_targets(text: str) -> tuple[str, ...]:
    """Explicit targets a person runs (`make test`): no pattern rules, variables or dot-targets."""
    targets = re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.MULTILINE)
    return tuple(dict.fromkeys(targets))
