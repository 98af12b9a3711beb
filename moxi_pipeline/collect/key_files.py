"""Which files of a repository the model sees in full, besides its file tree.

The rule (shared by the `local` source, `moxi generate` and, later, GitHub):

1. Candidates are manifests, then entry points; nothing else.
   - Manifests, at the root or one folder down (`api/package.json`): pyproject.toml, setup.py,
     setup.cfg, requirements.txt, package.json, Cargo.toml, go.mod, pom.xml, build.gradle(.kts),
     Gemfile, composer.json, *.csproj, CMakeLists.txt, Makefile, Dockerfile.
   - Entry points, up to two folders down: __main__.py, main.py, app.py, cli.py, manage.py,
     index.js/ts, src/main.rs, src/lib.rs, main.go, cmd/<name>/main.go, Program.cs, and a top-level
     package's `__init__.py` (`pkg/__init__.py` or `src/pkg/__init__.py`); never under tests/, docs/,
     examples/, scripts/ or benchmarks/.
   The depth limits keep a monorepo's 40 nested package.json files from crowding out the root ones.
   Then other code files in the top two levels: first those named after the project (a file or top
   folder with the project's name, LARCH's strongest cue), then the rest, shallowest first.
   Nothing under tests/, fixtures/, docs/, examples/, vendor/ or build folders is ever a candidate,
   at any depth (a test fixture's package.json is not the project's manifest), nor a test file.
2. Order: manifests, entry points, code named after the project, other code; then the shallowest path,
   then the order of the lists above, then the path itself, so the choice is deterministic.
3. At most `MAX_KEY_FILES` = 6 files, each cut to `MAX_KEY_FILE_CHARS` = 4000 characters
   (6 x 4000 = 24,000 characters, ~6,000 tokens at most, before the prompt's own cap).
4. A README or LICENSE is never a key file (the README is the training target; a licence is
   boilerplate). Binary (a NUL byte in the head) or non-UTF-8 files are passed over for the next one.
"""

from __future__ import annotations

import codecs
import fnmatch
import re
from pathlib import Path, PurePosixPath

from moxi_pipeline.collect.safe_fs import read_head
from moxi_pipeline.records import KeyFile

MAX_KEY_FILES = 6
MAX_KEY_FILE_CHARS = 4000

MANIFEST_PATTERNS = (
    "pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "package.json", "Cargo.toml", "go.mod",
    "pom.xml", "build.gradle", "build.gradle.kts", "Gemfile", "composer.json", "*.csproj", "CMakeLists.txt",
    "Makefile", "Dockerfile",
)
# Matched against the whole path (fnmatch, `*` crosses no `/` here because every pattern is anchored).
ENTRY_POINT_PATTERNS = (
    "__main__.py", "*/__main__.py", "*/*/__main__.py",
    "main.py", "app.py", "cli.py", "manage.py", "*/main.py", "*/app.py", "*/cli.py",
    "index.js", "index.ts", "src/index.js", "src/index.ts",
    "src/main.rs", "src/lib.rs", "main.go", "cmd/*/main.go", "Program.cs", "*/Program.cs",
)
MAX_MANIFEST_DEPTH = 1
MAX_ENTRY_POINT_DEPTH = 2
# Folders whose `__init__.py` or `main.py` is not the project's own entry point.
NOT_PACKAGES = {"tests", "test", "testing", "docs", "doc", "examples", "example", "scripts", "benchmarks"}
NEVER_KEY = ("readme", "license", "licence", "copying")
# Never the project's own code: tests, fixtures, docs, examples, vendored and generated folders.
NOT_CODE_DIRS = {
    "tests", "test", "testing", "spec", "__tests__", "fixtures", "__fixtures__", "testdata", "docs", "doc",
    "examples", "example", "vendor", "third_party", "node_modules", "dist", "build", "target", "benchmarks",
}
_TEST_NAME = re.compile(r"^(test_.*\.py|conftest\.py|.*_test\.(py|go)|.*\.(test|spec)\.[jt]sx?)$")
CODE_EXTENSIONS = {".py", ".js", ".ts", ".mjs", ".go", ".rs", ".rb", ".php", ".java", ".kt", ".cs", ".swift", ".dart",
                   ".c", ".cc", ".cpp", ".h", ".ex", ".scala", ".lua"}
MAX_CODE_DEPTH = 1  # other code files: the top two levels (`server/game_server.py`), shallowest first


def _depth(path: str) -> int:
    return path.count("/")


def _is_never_key(path: str) -> bool:
    name = PurePosixPath(path).name.lower()
    return name.startswith(NEVER_KEY)


def _is_package_init(path: str) -> bool:
    parts = path.split("/")
    if parts[-1] != "__init__.py" or len(parts) not in (2, 3):
        return False
    if len(parts) == 3 and parts[0] != "src":
        return False
    package = parts[-2]
    is_test_package = package.endswith(("_tests", "_test"))
    return package not in NOT_PACKAGES and not is_test_package and not package.startswith((".", "_"))


def _skipped(path: str) -> bool:
    """Under a test, fixture, docs, example, vendored or build folder, at any depth, or a test file."""
    parts = path.split("/")
    name = parts[-1]
    folders = [part.lower() for part in parts[:-1]]
    return any(f in NOT_CODE_DIRS or f.endswith(("_tests", "_test")) for f in folders) or bool(_TEST_NAME.search(name))


def _rank(path: str, project: str | None = None) -> tuple[int, int, int, str] | None:
    """Sort key (category, depth, list position, path), or None when the path is no candidate."""
    if _skipped(path):
        return None
    name = PurePosixPath(path).name
    depth = _depth(path)
    if depth <= MAX_MANIFEST_DEPTH:
        for position, pattern in enumerate(MANIFEST_PATTERNS):
            if fnmatch.fnmatchcase(name, pattern):
                return (0, depth, position, path)
    if depth <= MAX_ENTRY_POINT_DEPTH and path.split("/")[0] not in NOT_PACKAGES:
        for position, pattern in enumerate(ENTRY_POINT_PATTERNS):
            if fnmatch.fnmatchcase(path, pattern) and _depth(pattern) == depth:
                return (1, depth, position, path)
        if _is_package_init(path):
            return (1, depth, len(ENTRY_POINT_PATTERNS), path)
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in CODE_EXTENSIONS and depth <= MAX_CODE_DEPTH:
        # LARCH's cue: a file (or its folder) named after the project is about the project
        stem = PurePosixPath(path).stem.lower().replace("-", "_")
        named = project is not None and project.lower().replace("-", "_") in (stem, path.split("/")[0].lower())
        return (2 if named else 3, depth, 0, path)
    return None


def rank_key_file_paths(file_tree: tuple[str, ...] | list[str], project: str | None = None) -> list[str]:
    """Every candidate key file in the tree, best first (the module docstring's rule, before the cap)."""
    ranked = [(rank, path) for path in file_tree if not _is_never_key(path) and (rank := _rank(path, project))]
    return [path for _, path in sorted(ranked)]


def read_text_head(root: Path, rel_path: str, max_chars: int = MAX_KEY_FILE_CHARS) -> str | None:
    """The first `max_chars` characters of the UTF-8 text file `root/rel_path`; None when it cannot be one.

    None for binary (a NUL byte) or undecodable files, and for anything `safe_fs.read_head` refuses: a
    path that resolves outside `root`, a FIFO, device or folder, a missing file. Reads at most 4 bytes
    per character (UTF-8's widest), so a 2 GB data file costs 16 KB.
    """
    try:
        head = read_head(Path(root).resolve(), rel_path, max_chars * 4)
    except OSError:  # RefusedRead included: the caller passes over this file for the next candidate
        return None
    if b"\0" in head:
        return None
    try:
        # An incremental decoder tolerates a character cut in half at the read boundary.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    return text[:max_chars]


def read_key_files(
    root: Path, file_tree: tuple[str, ...] | list[str], max_files: int = MAX_KEY_FILES,
    max_chars: int = MAX_KEY_FILE_CHARS,
) -> tuple[KeyFile, ...]:
    """Read the best `max_files` readable candidates under `root`, each capped at `max_chars`.

    Every read goes through `read_text_head`, so a candidate that is a link out of the repository,
    a FIFO or a device is passed over like a binary file.
    """
    chosen: list[KeyFile] = []
    for rel_path in rank_key_file_paths(file_tree, project=root.name):
        if len(chosen) >= max_files:
            break
        text = read_text_head(root, rel_path, max_chars)
        if text is not None:
            chosen.append(KeyFile(path=rel_path, content=text))
    return tuple(chosen)
