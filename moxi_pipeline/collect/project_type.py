"""A repository's main language and project type, from its file tree and key files alone.

`detect_project_type` answers with one word of `PROJECT_TYPES`. The first rule that holds wins:

1. no code at all: `documentation` if it has docs (.md/.rst/.txt/.adoc), else `unknown`;
2. notebooks are at least a third of the code files, or the language is "Jupyter Notebook":
   `data_science`;
3. a mobile marker (AndroidManifest.xml, *.xcodeproj, Podfile, pubspec.yaml): `mobile_app`;
4. a web-app marker (manage.py, next/vite/nuxt/svelte/angular config, src/App.*, public/index.html,
   or a front-end framework in package.json): `web_application`;
5. otherwise by language: Python -> `python_cli` (a __main__.py, cli.py, a bin/ script or declared
   console scripts), `python_package` (a root pyproject.toml/setup.py/setup.cfg, or an installed
   distribution's *.dist-info/METADATA) or `python_project`;
   JavaScript/TypeScript -> `javascript_library`; Rust -> `rust_crate`; Go -> `go_module`;
   Java/Kotlin/Scala/Groovy -> `java_project`; C#/F#/VB -> `dotnet_project`; PHP -> `php_project`;
   Ruby -> `ruby_project`; C/C++ -> `c_cpp_project`; Swift/Objective-C -> `apple_project`;
   anything else -> `unknown`.

The language is the one given (GitHub's, for imported records) or, when absent, `guess_language`: the
language with the most files by extension, ties broken alphabetically.
"""

from __future__ import annotations

from collections import Counter
from pathlib import PurePosixPath

from moxi_pipeline.records import KeyFile

PROJECT_TYPES = (
    "documentation", "data_science", "mobile_app", "web_application", "python_cli", "python_package",
    "python_project", "javascript_library", "rust_crate", "go_module", "java_project", "dotnet_project",
    "php_project", "ruby_project", "c_cpp_project", "apple_project", "unknown",
)

# Names as GitHub's linguist spells them, so guessed and imported languages agree.
EXTENSION_LANGUAGES = {
    ".py": "Python", ".pyi": "Python", ".ipynb": "Jupyter Notebook",
    ".js": "JavaScript", ".mjs": "JavaScript", ".cjs": "JavaScript", ".jsx": "JavaScript",
    ".ts": "TypeScript", ".tsx": "TypeScript", ".vue": "Vue", ".svelte": "Svelte",
    ".rs": "Rust", ".go": "Go", ".java": "Java", ".kt": "Kotlin", ".kts": "Kotlin", ".scala": "Scala",
    ".groovy": "Groovy", ".cs": "C#", ".fs": "F#", ".vb": "Visual Basic .NET", ".php": "PHP", ".rb": "Ruby",
    ".c": "C", ".h": "C", ".cc": "C++", ".cpp": "C++", ".cxx": "C++", ".hpp": "C++", ".hh": "C++",
    ".swift": "Swift", ".m": "Objective-C", ".mm": "Objective-C++", ".sh": "Shell", ".bash": "Shell",
    ".lua": "Lua", ".r": "R", ".jl": "Julia", ".dart": "Dart", ".ex": "Elixir", ".exs": "Elixir",
    ".hs": "Haskell", ".ml": "OCaml", ".zig": "Zig", ".pl": "Perl", ".clj": "Clojure",
}
DOC_EXTENSIONS = {".md", ".rst", ".txt", ".adoc", ".markdown"}
LANGUAGE_FAMILIES = {
    "Python": "python", "JavaScript": "javascript_library", "TypeScript": "javascript_library",
    "Vue": "javascript_library", "Svelte": "javascript_library",
    "Rust": "rust_crate", "Go": "go_module", "Java": "java_project", "Kotlin": "java_project",
    "Scala": "java_project", "Groovy": "java_project", "C#": "dotnet_project", "F#": "dotnet_project",
    "Visual Basic .NET": "dotnet_project", "PHP": "php_project", "Ruby": "ruby_project",
    "C": "c_cpp_project", "C++": "c_cpp_project", "Swift": "apple_project", "Objective-C": "apple_project",
    "Objective-C++": "apple_project", "Jupyter Notebook": "data_science", "Markdown/Docs": "documentation",
}
MOBILE_NAMES = {"AndroidManifest.xml", "Podfile", "pubspec.yaml"}
WEB_NAMES = {
    "manage.py", "next.config.js", "next.config.mjs", "next.config.ts", "vite.config.js", "vite.config.ts",
    "nuxt.config.js", "nuxt.config.ts", "svelte.config.js", "angular.json", "gatsby-config.js",
}
WEB_PATHS = {
    "src/App.js", "src/App.jsx", "src/App.tsx", "src/App.vue", "src/App.svelte", "public/index.html",
}
WEB_DEPENDENCIES = ('"react-dom"', '"vue"', '"next"', '"nuxt"', '"@angular/core"', '"svelte"', '"express"')
PYTHON_MANIFESTS = {"pyproject.toml", "setup.py", "setup.cfg"}
CONSOLE_SCRIPT_MARKERS = ("[project.scripts]", "[tool.poetry.scripts]", "console_scripts")


def _language_of(path: str) -> str | None:
    return EXTENSION_LANGUAGES.get(PurePosixPath(path).suffix.lower())


def guess_language(file_tree: tuple[str, ...] | list[str]) -> str | None:
    """The language with the most files by extension (ties alphabetical); None when there is no code."""
    counts = Counter(language for path in file_tree if (language := _language_of(path)))
    if not counts:
        return None
    return min(counts, key=lambda language: (-counts[language], language))


def _is_mobile(file_tree: tuple[str, ...] | list[str]) -> bool:
    return any(
        PurePosixPath(path).name in MOBILE_NAMES or ".xcodeproj/" in f"{path}/" for path in file_tree
    )


def _is_web_app(file_tree: tuple[str, ...] | list[str], key_files: tuple[KeyFile, ...]) -> bool:
    shallow = [path for path in file_tree if path.count("/") <= 1]
    if any(PurePosixPath(path).name in WEB_NAMES or path in WEB_PATHS for path in shallow):
        return True
    manifests = [k.content for k in key_files if PurePosixPath(k.path).name == "package.json"]
    return any(dependency in content for content in manifests for dependency in WEB_DEPENDENCIES)


def _python_type(file_tree: tuple[str, ...] | list[str], key_files: tuple[KeyFile, ...]) -> str:
    names = [(path.count("/"), PurePosixPath(path).name, path) for path in file_tree]
    has_cli = any(
        (depth <= 2 and name in ("__main__.py", "cli.py")) or path.startswith("bin/")
        for depth, name, path in names
    )
    declares_scripts = any(marker in k.content for k in key_files for marker in CONSOLE_SCRIPT_MARKERS)
    if has_cli or declares_scripts:
        return "python_cli"
    # An installed distribution's `*.dist-info/METADATA` is the built form of its pyproject.toml.
    if any(
        (depth == 0 and name in PYTHON_MANIFESTS) or (depth == 1 and path.endswith(".dist-info/METADATA"))
        for depth, name, path in names
    ):
        return "python_package"
    return "python_project"


def detect_project_type(
    file_tree: tuple[str, ...] | list[str], key_files: tuple[KeyFile, ...] = (), language: str | None = None
) -> str:
    """One of `PROJECT_TYPES`, by the first rule of the module docstring that holds."""
    code_languages = [found for path in file_tree if (found := _language_of(path))]
    language = language or guess_language(file_tree)
    if language == "Markdown/Docs" or (not code_languages and language is None):
        has_docs = any(PurePosixPath(path).suffix.lower() in DOC_EXTENSIONS for path in file_tree)
        return "documentation" if has_docs else "unknown"
    notebooks = code_languages.count("Jupyter Notebook")
    if language == "Jupyter Notebook" or (notebooks and notebooks * 3 >= len(code_languages)):
        return "data_science"
    if _is_mobile(file_tree):
        return "mobile_app"
    if _is_web_app(file_tree, key_files):
        return "web_application"
    family = LANGUAGE_FAMILIES.get(language, "unknown")
    if family == "python":
        return _python_type(file_tree, key_files)
    return family
