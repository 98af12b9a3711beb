"""What a README may cite: the repository's evidence (`Evidence`: its tree, its key files' text, its facts), and
the checks against it that the grounding pass applies and the evaluation's trust metrics count: file mentions
and unknown paths, URLs found in the repository, and shell commands the facts support.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from moxi_pipeline.readme import markdown
from moxi_pipeline.readme.facts import ECOSYSTEM_NAMES, RepoFacts
from moxi_pipeline.readme.words import project_names, stem

_URL = re.compile(r"(https?|ftp)://\S+|www\.\S+|\S+@\S+\.\w+")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>\n]*>")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
_TOKEN = re.compile(r"[\w.~/-]+")
FILE_EXTENSIONS = frozenset(
    "py pyi ipynb md rst txt toml cfg ini yaml yml json lock xml html css scss js mjs cjs jsx ts tsx vue "
    "go mod rs c h cc cpp hpp cs csproj sln java kt kts gradle scala rb gemspec php swift m mm podspec "
    "sh bash ps1 bat sql r jl lua pl dart ex exs env conf dockerfile".split()
)
FILE_NAMES = frozenset(("Makefile", "Dockerfile", "Gemfile", "Rakefile", "Procfile", "Vagrantfile", "Justfile"))
# First words of commands that install, fetch, build or delete: each must be backed by the facts.
COMMAND_WORDS = {
    "pip", "pip3", "pipx", "python", "python3", "poetry", "conda", "uv", "npm", "npx", "yarn", "pnpm", "bun",
    "cargo", "go", "gem", "bundle", "composer", "mvn", "gradle", "./gradlew", "dotnet", "dart", "flutter",
    "docker", "docker-compose", "brew", "apt", "apt-get", "yum", "dnf", "sudo", "curl", "wget", "git", "rm",
    "make", "cd", "node", "deno", "pytest", "java", "kubectl", "helm", "snap", "choco", "scoop",
    # the other ecosystems' interpreters and build tools: `php composer install -o x --no_cache` is no code
    # example, it is a command the facts must give (not English words such as "mix" or "stack": a prose line
    # that opens with one of these is judged as a command)
    "php", "ruby", "rake", "rails", "perl", "swift", "carthage", "xcodebuild", "sbt", "lein", "clj", "clojure",
    "elixir", "cmake", "ctest", "meson", "bazel", "nuget", "msbuild", "rustup", "cabal", "opam", "luarocks",
    "Rscript", "julia",
}
# what follows a program's name on a command line: a word, a flag or a placeholder, not an operator or `(`
_ARGUMENT = re.compile(r"^([A-Za-z][\w-]*|--?\w[\w-]*|<[^>]+>)$")
_PIPELINE = re.compile(r"\s(?:\|\|?|&&|;)\s")


def pipes_into_tool(text: str) -> bool:
    """A later command of a pipeline or chain opens with a tool of COMMAND_WORDS: `x | sh`, `x && npm i y`."""
    return any(segment.split()[:1] and segment.split()[0] in COMMAND_WORDS for segment in _PIPELINE.split(text)[1:])


def runs_tool(line: str) -> bool:
    """A tool of COMMAND_WORDS with an argument (`pip install x`), which no language's code line is (`git = Repo()`)."""
    words = line.strip().removeprefix("$ ").split()
    return len(words) > 1 and words[0] in COMMAND_WORDS and bool(_ARGUMENT.match(words[1]))


def _loose(name: str) -> str:
    """A name as a user types it, whatever its case and separators: Spam-Detector, spam_detector, spamdetector."""
    return re.sub(r"[-_.\s]", "", name.rsplit("/", 1)[-1].lower())


LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
# `[Package Overview](#package: overview)`: a space makes it no link at all; a reader sees the brackets
SPACED_ANCHOR = re.compile(r"(?<!!)\[([^\]]*)\]\((#[^)\n]*\s[^)\n]*)\)")


def file_mentions(text: str) -> set[str]:
    """Things that look like files: a known extension or file name, or a slashed word written as
    `code`, `./x` or `x/` (a directory). Bare `and/or` in prose is not a path; URLs and HTML tags are dropped."""
    text = _HTML_TAG.sub(" ", _URL.sub(" ", text))
    code = " ".join(CODE_SPAN.findall(text))
    mentions = set()
    for source, in_code in ((text, False), (code, True)):
        for token in _TOKEN.findall(source):
            path = token.rstrip(".-").lstrip("-")  # a leading dot is a dotfile (`.github/`), not punctuation
            if not path.strip("/~."):
                continue
            name = path.rstrip("/").rsplit("/", 1)[-1]
            stem, _, extension = name.rpartition(".")
            has_extension = bool(stem) and extension.lower() in FILE_EXTENSIONS
            # "Node.js", "Vue.js" in prose are products, not files; `App.js` in code is a file
            if has_extension and extension == "js" and stem[0].isupper() and "/" not in path and not in_code:
                continue
            slashed = "/" in token and (in_code or token.startswith(("./", "~/")) or token.endswith("/"))
            if has_extension or name in FILE_NAMES or slashed:
                mentions.add(path.removeprefix("./").strip("/"))
    return {m for m in mentions if m}


def known_paths(file_tree) -> set[str]:
    """Every contiguous run of path components: "a/b/c.py" -> a, a/b, b, a/b/c.py, b/c.py, c.py ..."""
    known: set[str] = set()
    for path in file_tree:
        parts = path.removesuffix("@").strip("/").split("/")  # `name@` is a symlink: a real path all the same
        known.update("/".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1))
    return known


def heading_anchor(title: str) -> str:
    """GitHub's anchor for a heading: lower-cased, punctuation dropped (not `-` or `_`), spaces to `-`."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def heading_anchors(text: str) -> set[str]:
    """Every `#anchor` the README's headings define; a repeated title also gets `-1`, `-2`, ... as on GitHub."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for heading in markdown.headings(text):
        slug = heading_anchor(heading.title)
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def broken_anchors(text: str) -> list[str]:
    """In-page link targets (`[x](#anchor)`) that match no heading of `text`, in order; images excluded."""
    anchors = heading_anchors(text)
    targets = [target for bang, _, target in LINK.findall(text) if not bang and target.startswith("#")]
    return [target for target in targets if target[1:].lower() not in anchors] + [
        target for _, target in SPACED_ANCHOR.findall(text)]


def unknown_paths(text: str, known: set[str]) -> set[str]:
    return {mention for mention in file_mentions(text) if mention not in known}


def _norm_url(url: str) -> str:
    url = url.strip().rstrip("/.,;:)").split("#")[0]
    url = re.sub(r"^https?://(www\.)?", "", url.lower())
    return url.removesuffix(".git")


@dataclass(frozen=True)
class Evidence:
    """What a README may cite: the tree, the key files' text, and the facts."""

    facts: RepoFacts
    known: set[str]
    corpus: str  # key files and tree, lower-cased, where a URL or command is "found in the repository"
    # What a model wrote, judged strictly: the project run by its own name (`zircon run`) is a command the facts
    # must give, and repeated, templated or unfounded list items go (`lists.py`). Off for a real README's own text
    # (training answers), whose author knows the project's CLI where the facts may not see it (a Go `main` package, a
    # script without an entry point) and its features where the key files do not name them.
    model_text: bool = True

    @classmethod
    def of(cls, facts: RepoFacts, file_tree, key_files, *, model_text: bool = True) -> Evidence:
        corpus = "\n".join([*(k.content for k in key_files), *file_tree]).lower()
        return cls(facts, known_paths(file_tree), corpus, model_text)

    def mentions(self, word: str) -> bool:
        """Whether the repository's text (key files, tree) or the names the facts give it (its language,
        ecosystem and frameworks, which Built With lists) have the word, or its stem (`parsing` -> `pars`)."""
        root = stem(word.lower())
        return root in self.corpus or root in self._named

    def has_text(self, text: str) -> bool:
        """Whether the repository's text (key files, tree) or the names the facts give it hold `text` as written,
        case aside: a name in code (`stronghold.py`, `tronk`) is judged whole, not by its stem."""
        text = text.lower()
        return text in self.corpus or text in self._named

    @cached_property
    def _named(self) -> str:
        """The facts' names of the project's stack, lower-cased: built once, read for every word judged."""
        facts = self.facts
        names = (facts.language, ECOSYSTEM_NAMES.get(facts.ecosystem or ""), *facts.frameworks)
        return " ".join(filter(None, names)).lower()

    @cached_property
    def names(self) -> frozenset[str]:
        """The words of the project's own names (`words.project_names`): naming the project says nothing about it."""
        return project_names(self.facts.name, self.facts.package or "")

    def is_command(self, text: str) -> bool:
        """Whether `text` reads as a shell command to judge: it opens with a tool of COMMAND_WORDS, or pipes
        or chains into one (`karma x | npx rake`), or it runs the project by its own name (`runs_own_name`)."""
        words = text.strip().removeprefix("$ ").split()
        return bool(words) and (words[0] in COMMAND_WORDS or pipes_into_tool(text) or self.runs_own_name(text))

    def runs_own_name(self, text: str) -> bool:
        """For `model_text`: `text` runs the project by its own name with arguments, `zircon run` or
        `spam_detector <path> -c x`, and the facts give no command of that name."""
        words = text.strip().removeprefix("$ ").split()
        if not self.model_text or len(words) < 2 or not _ARGUMENT.match(words[1]):
            return False
        own = {_loose(c.split()[0]) for c in self.facts.commands if c.split()}
        names = {_loose(n) for n in (self.facts.name, self.facts.package or "") if n and " " not in n}
        return _loose(words[0]) in names - own - {""}

    def url_allowed(self, url: str) -> bool:
        norm = _norm_url(url)
        if not norm:
            return True
        # the allowed URL itself or a page under it: github.com/o/cli/issues, never github.com/o/cli-tools
        if any(norm == base or norm.startswith((base + "/", base + "?"))
               for base in map(_norm_url, self.facts.allowed_urls())):
            return True
        # found whole in the repository's text: `github.co/` is not found in "github.com/o/r"
        return re.search(rf"(?<![\w.-]){re.escape(norm)}(?![\w-]|\.\w)", self.corpus) is not None

    def command_allowed(self, line: str) -> bool:
        command = line.strip().removeprefix("$ ").strip()
        if not command or command.startswith("#"):
            return True
        words = command.split()
        first = words[0]
        allowed = {*self.facts.install, *self.facts.commands, self.facts.test_command or ""}
        if self.facts.repo_url:
            folder = self.facts.repo_url.rstrip("/").rsplit("/", 1)[-1]
            allowed |= {f"git clone {self.facts.repo_url}", f"git clone {self.facts.repo_url}.git", f"cd {folder}"}
        if command in allowed or command.lower() in {line.strip() for line in self.corpus.split("\n")}:
            return True
        own = {c.split()[0] for c in self.facts.commands if c.split()}
        if first in own and first not in COMMAND_WORDS:
            return not unknown_paths(command, self.known)
        if not self.is_command(command):
            return True  # not a shell command we can judge: a code example line
        if first in ("sudo", "rm", "curl", "wget") or "| sh" in command or "| bash" in command:
            return False
        if len(segments := _PIPELINE.split(command)) > 1:  # `cd x && make`: each command of the line is judged
            return all(self.command_allowed(segment) for segment in segments if segment.strip())
        # the same tool with dependencies the manifest names (`pip install requests` for a project using it),
        # and nothing else: no flag, path or other word after them
        return (any(c.split()[:2] == words[:2] for c in allowed if c) and len(words) > 2
                and all(word in self.facts.dependencies for word in words[2:]))
