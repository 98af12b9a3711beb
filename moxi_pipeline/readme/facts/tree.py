"""Facts read off the file tree alone: tests, docs, CI, examples, contributing, license file, frameworks."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from moxi_pipeline.collect.licenses import LICENSE_NAMES, license_file, spdx_from_text  # noqa: F401 (re-exported)

_TEST_DIRS = {"tests", "test", "spec", "__tests__", "testing"}
_TEST_FILE = re.compile(r"(^|/)(test_[^/]+\.py|[^/]+_test\.(py|go|rb|exs?)|[^/]+\.(test|spec)\.[jt]sx?|[^/]+Tests?\.(java|cs|kt))$")
_CI = (
    (re.compile(r"^\.github/workflows/[^/]+\.ya?ml$"), "GitHub Actions"),
    (re.compile(r"^\.travis\.yml$"), "Travis CI"),
    (re.compile(r"^\.gitlab-ci\.yml$"), "GitLab CI"),
    (re.compile(r"^\.circleci/"), "CircleCI"),
    (re.compile(r"^azure-pipelines\.ya?ml$"), "Azure Pipelines"),
    (re.compile(r"^appveyor\.ya?ml$"), "AppVeyor"),
    (re.compile(r"^Jenkinsfile$"), "Jenkins"),
)
# dependency name (lower case) -> how people write the framework's name
FRAMEWORKS = {
    "django": "Django", "flask": "Flask", "fastapi": "FastAPI", "streamlit": "Streamlit", "torch": "PyTorch",
    "tensorflow": "TensorFlow", "numpy": "NumPy", "pandas": "pandas", "pydantic": "Pydantic", "click": "Click",
    "typer": "Typer", "scikit-learn": "scikit-learn", "transformers": "Hugging Face Transformers",
    "react": "React", "vue": "Vue", "express": "Express", "next": "Next.js", "svelte": "Svelte",
    "@angular/core": "Angular", "electron": "Electron", "typescript": "TypeScript", "koa": "Koa",
    "tokio": "Tokio", "actix-web": "Actix Web", "axum": "axum", "serde": "Serde", "clap": "clap",
    "github.com/gin-gonic/gin": "Gin", "github.com/labstack/echo/v4": "Echo", "github.com/spf13/cobra": "Cobra",
    "github.com/gofiber/fiber/v2": "Fiber", "laravel/framework": "Laravel", "symfony/framework-bundle": "Symfony",
    "rails": "Ruby on Rails", "spring-boot-starter": "Spring Boot", "spring-boot-starter-web": "Spring Boot",
    "flutter": "Flutter",
}


def _top(path: str) -> str:
    return path.split("/", 1)[0]


def test_paths(file_tree) -> list[str]:
    """Test folders and files: `tests/`, `spec/`, `test_x.py`, `x_test.go`, `x.test.ts`, `FooTest.java`."""
    found = [path for path in file_tree if _top(path) in _TEST_DIRS or _TEST_FILE.search(path)]
    return sorted(found)


def first_dir(file_tree, names: tuple[str, ...]) -> str | None:
    """The first of `names` that is a top-level folder of the tree."""
    tops = {_top(path) for path in file_tree if "/" in path}
    return next((name for name in names if name in tops), None)


def ci_systems(file_tree) -> tuple[str, ...]:
    found = [name for pattern, name in _CI if any(pattern.search(path) for path in file_tree)]
    return tuple(dict.fromkeys(found))


def root_file(file_tree, stems: tuple[str, ...], also_in: tuple[str, ...] = (".github/", "docs/")) -> str | None:
    """A file whose name (any case, any extension) starts with one of `stems`, at the root first."""
    for prefix in ("", *also_in):
        for path in sorted(file_tree):
            rest = path[len(prefix):] if path.startswith(prefix) else None
            if rest and "/" not in rest and rest.lower().startswith(stems):
                return path
    return None


def frameworks(dependencies) -> tuple[str, ...]:
    names = [FRAMEWORKS[dep.lower()] for dep in dependencies if dep.lower() in FRAMEWORKS]
    return tuple(dict.fromkeys(names))


def python_packages(file_tree) -> list[str]:
    """Importable top-level packages: `pkg/__init__.py` or `src/pkg/__init__.py`, tests excluded."""
    found = []
    for path in file_tree:
        parts = PurePosixPath(path).parts
        if parts[-1] != "__init__.py" or len(parts) not in (2, 3) or (len(parts) == 3 and parts[0] != "src"):
            continue
        package = parts[-2]
        if package not in _TEST_DIRS and not package.startswith((".", "_")) and package.isidentifier():
            found.append(package)
    return sorted(dict.fromkeys(found))
