"""The grounding pass: a README states only what the repository supports.

`ground_readme` removes, and counts per README:
- a path that is not in the file tree (the sentence, list item or code line that names it);
- a URL found nowhere in the repository (manifests, key files, tree) unless it is built from facts
  (the repository's own pages, its package's registry page): a link keeps its text, an image goes;
- a shell command that the facts do not support: an install or run command for another package or
  ecosystem, `sudo`, `rm -rf`, `curl | sh`. Commands the facts give, CLI invocations of the repository's
  own commands, and lines found verbatim in a key file are kept;
- an in-page link whose `#anchor` matches no heading of the README (the link keeps its text).

`file_mentions`, `unknown_paths` and `invented_urls` are the same checks the evaluation's trust
metrics count, so a grounded README scores what the pass guarantees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from moxi_pipeline.readme import markdown
from moxi_pipeline.readme.facts import RepoFacts

_URL = re.compile(r"(https?|ftp)://\S+|www\.\S+|\S+@\S+\.\w+")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>\n]*>")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
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
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
# `[Package Overview](#package: overview)`: a space makes it no link at all; a reader sees the brackets
_SPACED_ANCHOR = re.compile(r"(?<!!)\[([^\]]*)\]\((#[^)\n]*\s[^)\n]*)\)")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_LIST_ITEM = re.compile(r"^\s*([-*+]|\d+[.)])\s")
# what a line ending in ':' may introduce: a fence, a list, a table, indented code or a quote
_BLOCK_START = re.compile(r"^(\s*(```|~~~|[-*+]\s|\d+[.)]\s|\||>)|\s{4,}\S)")
# what follows a program's name on a command line: a word, a flag or a placeholder, not an operator or `(`
_ARGUMENT = re.compile(r"^([A-Za-z][\w-]*|--?\w[\w-]*|<[^>]+>)$")
_PIPELINE = re.compile(r"\s(?:\|\|?|&&|;)\s")


def _pipes_into_tool(text: str) -> bool:
    """A later command of a pipeline or chain opens with a tool of COMMAND_WORDS: `x | sh`, `x && npm i y`."""
    return any(segment.split()[:1] and segment.split()[0] in COMMAND_WORDS for segment in _PIPELINE.split(text)[1:])


def _runs_tool(line: str) -> bool:
    """A tool of COMMAND_WORDS with an argument (`pip install x`), which no language's code line is (`git = Repo()`)."""
    words = line.strip().removeprefix("$ ").split()
    return len(words) > 1 and words[0] in COMMAND_WORDS and bool(_ARGUMENT.match(words[1]))


def _loose(name: str) -> str:
    """A name as a user types it, whatever its case and separators: Spam-Detector, spam_detector, spamdetector."""
    return re.sub(r"[-_.\s]", "", name.rsplit("/", 1)[-1].lower())


def file_mentions(text: str) -> set[str]:
    """Things that look like files: a known extension or file name, or a slashed word written as
    `code`, `./x` or `x/` (a directory). Bare `and/or` in prose is not a path; URLs and HTML tags are dropped."""
    text = _HTML_TAG.sub(" ", _URL.sub(" ", text))
    code = " ".join(_CODE_SPAN.findall(text))
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
    targets = [target for bang, _, target in _LINK.findall(text) if not bang and target.startswith("#")]
    return [target for target in targets if target[1:].lower() not in anchors] + [
        target for _, target in _SPACED_ANCHOR.findall(text)]


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
    # Judge the project run by its own name (`zircon run`) as a command the facts must give. On for what a
    # model writes; off for a real README's own text (training answers), whose author knows the project's CLI
    # where the facts may not see it (a Go `main` package, a script without an entry point).
    own_name_commands: bool = True

    @classmethod
    def of(cls, facts: RepoFacts, file_tree, key_files, *, own_name_commands: bool = True) -> Evidence:
        corpus = "\n".join([*(k.content for k in key_files), *file_tree]).lower()
        return cls(facts, known_paths(file_tree), corpus, own_name_commands)

    def is_command(self, text: str) -> bool:
        """Whether `text` reads as a shell command to judge: it opens with a tool of COMMAND_WORDS, or pipes
        or chains into one (`karma x | npx rake`), or it runs the project by its own name (`runs_own_name`)."""
        words = text.strip().removeprefix("$ ").split()
        return bool(words) and (words[0] in COMMAND_WORDS or _pipes_into_tool(text) or self.runs_own_name(text))

    def runs_own_name(self, text: str) -> bool:
        """With `own_name_commands`: `text` runs the project by its own name with arguments, `zircon run` or
        `spam_detector <path> -c x`, and the facts give no command of that name."""
        words = text.strip().removeprefix("$ ").split()
        if not self.own_name_commands or len(words) < 2 or not _ARGUMENT.match(words[1]):
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


@dataclass
class GroundingReport:
    paths: int = 0
    urls: int = 0
    commands: int = 0
    anchors: int = 0  # in-page links to a heading the README does not have
    removed: list[str] = field(default_factory=list)

    def total(self) -> int:
        return self.paths + self.urls + self.commands + self.anchors


def _fix_links(line: str, evidence: Evidence, report: GroundingReport, anchors: set[str]) -> str:
    def replace(match: re.Match) -> str:
        bang, text, target = match.groups()
        is_url = "://" in target or target.startswith("www.")
        in_page = target.startswith("#")
        local = target.split("#")[0].removeprefix("./").strip("/")
        if is_url:
            ok = evidence.url_allowed(target)
        else:
            ok = target[1:].lower() in anchors if in_page else local in evidence.known
        if ok:
            return match.group(0)
        if is_url:
            report.urls += 1
        elif in_page:
            report.anchors += 1
        else:
            report.paths += 1
        report.removed.append(target)
        return "" if bang else text

    def unlink(match: re.Match) -> str:
        report.anchors += 1
        report.removed.append(match.group(2))
        return match.group(1)

    return _LINK.sub(replace, _SPACED_ANCHOR.sub(unlink, line))


def _sentence_problems(sentence: str, evidence: Evidence, report: GroundingReport) -> bool:
    """True (and counted) when the sentence names an unknown path, an invented URL or an unsupported command."""
    bad_urls = [u for u in markdown.BARE_URL.findall(sentence) if not evidence.url_allowed(u.rstrip(".,;:!?"))]
    bad_paths = unknown_paths(sentence, evidence.known)
    bad_commands = [span for span in _CODE_SPAN.findall(sentence)
                    if evidence.is_command(span) and not evidence.command_allowed(span)]
    report.urls += len(bad_urls)
    report.paths += len(bad_paths)
    report.commands += len(bad_commands)
    report.removed += [*bad_urls, *sorted(bad_paths), *bad_commands]
    return bool(bad_urls or bad_paths or bad_commands)


def _ground_prose(line: str, evidence: Evidence, report: GroundingReport, anchors: set[str]) -> str | None:
    line = _fix_links(line, evidence, report, anchors)
    bare = _LIST_ITEM.sub("", line).strip().strip("`").removeprefix("$ ")
    runs_tool = bare.split() and (bare.split()[0] in COMMAND_WORDS or _pipes_into_tool(bare))
    if runs_tool and not evidence.command_allowed(bare):
        report.commands += 1  # a command written as prose ("pip install x" on a line of its own)
        report.removed.append(bare)
        return None
    if _LIST_ITEM.match(line) or line.lstrip().startswith("#"):
        return None if _sentence_problems(line, evidence, report) else line
    kept = [s for s in _SENTENCE.split(line) if not _sentence_problems(s, evidence, report)]
    return " ".join(kept) if kept else None


# a fence's info string as a reader's renderer uses it: one language name ("bash", "c++", "objective-c")
_LANGUAGE = re.compile(r"[A-Za-z][\w+#-]{0,24}")
_FENCE_OPEN = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")


def _ground_info(line: str, evidence: Evidence, report: GroundingReport) -> str:
    """An opening fence keeps a language name only: anything else after the backticks (a file name, a
    command, stray words) is dropped, and an unknown path among it is counted as removed."""
    match = _FENCE_OPEN.match(line)
    if not match:
        return line
    indent, marker, info = match.groups()
    words = info.split()
    language = words[0] if words and _LANGUAGE.fullmatch(words[0]) else ""
    if info.strip() == language:
        return line
    bad = unknown_paths(info, evidence.known)
    report.paths += len(bad)
    report.removed += sorted(bad)
    return f"{indent}{marker}{language}"


def _ground_code(lines: list[str], info: str, evidence: Evidence, report: GroundingReport) -> list[str]:
    shell = info.split()[0].lower() in markdown.SHELL_INFOS if info.split() else True
    kept = []
    for line in lines:
        # in any other fence too, a line that runs a tool or the project by its name (`pip install -r x` or
        # `spam_detector <path> -c x` in a ```python3 block) is a command line, not code
        if (shell or _runs_tool(line) or evidence.runs_own_name(line)) and not evidence.command_allowed(line):
            report.commands += 1
            report.removed.append(line.strip())
        elif (bad := unknown_paths(line, evidence.known)) or any(
            not evidence.url_allowed(u) for u in markdown.BARE_URL.findall(line)
        ):
            report.paths += len(bad)
            report.urls += len([u for u in markdown.BARE_URL.findall(line) if not evidence.url_allowed(u)])
            report.removed.append(line.strip())
        else:
            kept.append(line)
    return kept


def ground_readme(
    text: str, evidence: Evidence, max_passes: int = 3, anchors: set[str] | None = None,
) -> tuple[str, GroundingReport]:
    """The README with ungrounded paths, URLs, commands and in-page links removed, and what was removed.

    `anchors`: the `#anchors` an in-page link may target, when `text` is one part of a README (a section
    added to an existing one); by default, those of `text`'s own headings.
    Repeated until a pass removes nothing: tidying a broken fence can turn code into prose, and a
    line the first pass read as code must still be judged as prose."""
    report = GroundingReport()
    for _ in range(max_passes):
        before = report.total()
        text = _ground_once(text, evidence, report, anchors)
        if report.total() == before:
            break
    return text, report


def _ground_once(text: str, evidence: Evidence, report: GroundingReport, anchors: set[str] | None = None) -> str:
    lines = text.split("\n")
    blocks = {block.start: block for block in markdown.code_blocks(text) if block.info or lines[block.start].lstrip().startswith(("`", "~"))}
    anchors = heading_anchors(text) if anchors is None else anchors
    out: list[str] = []
    index = 0
    while index < len(lines):
        if index in blocks:
            block = blocks[index]
            # Only fence lines are exempt: an indented block ("    ```python" included) is all content, and
            # an unclosed fence runs to the end of the text, its last line content too.
            first = block.start + 1 if block.fenced else block.start
            end = min(block.end, len(lines))  # markdown-it may map a block one line past the text
            closed = block.fenced and end - 1 > block.start and _is_fence(lines[end - 1])
            last = end - 1 if closed else end
            body = _ground_code(lines[first:last], block.info, evidence, report)
            if any(line.strip() not in ("", "#", "$", "//", ">") for line in body):  # a lone prompt sign is no code
                opening = [_ground_info(line, evidence, report) for line in lines[block.start:first]]
                out += [*opening, *body, *lines[last:end]]
            index = block.end
            continue
        grounded = _ground_prose(lines[index], evidence, report, anchors) if lines[index].strip() else lines[index]
        if grounded is not None:
            out.append(grounded)
        index += 1
    return tidy("\n".join(out))


def _level(line: str) -> int:
    """A heading's level; 7 for anything that is not a heading."""
    match = re.match(r"^(#{1,6})\s", line.lstrip())
    return len(match.group(1)) if match else 7


def _is_fence(line: str) -> bool:
    return line.strip().startswith(("```", "~~~"))


def _drop_empty_fences(lines: list[str]) -> list[str]:
    """A fenced block with nothing but blank lines inside is empty: its fence lines and blank lines go."""
    empty = set()
    for start, end in markdown.fence_pairs(lines):
        if end is not None and not any(line.strip() for line in lines[start + 1 : end]):
            empty.update(range(start, end + 1))
    return [line for index, line in enumerate(lines) if index not in empty]


_BARE_HEADING = re.compile(r"\s{0,3}#{1,6}\s*")


def tidy(text: str) -> str:
    """What removals leave behind: a line ending in ':' that now introduces nothing, an empty list item,
    a heading with nothing under it or no words in it, an unclosed fence's opening line, runs of blank lines
    (repeated until stable)."""
    lines = text.split("\n")
    unclosed = [start for start, end in markdown.fence_pairs(lines) if end is None]
    if unclosed:
        del lines[unclosed[0]]
    while True:
        lines = _drop_empty_fences(lines)
        in_code = {i for start, end in markdown.fence_pairs(lines) for i in range(start, len(lines) if end is None else end + 1)}
        kept: list[str] = []
        for index, line in enumerate(lines):
            if index not in in_code and _BARE_HEADING.fullmatch(line):
                continue  # "#" alone: a heading with no words (what is left when grounding took its text)
            following = next((l for l in lines[index + 1 :] if l.strip()), "")
            introduces_nothing = line.rstrip().endswith(":") and not _BLOCK_START.match(following)
            empty_section = index > 0 and _level(line) < 7 and (not following or _level(following) <= _level(line))
            markup_only = _LIST_ITEM.match(line) and not re.search(r"[^\W_]", _LIST_ITEM.sub("", line))
            if not (introduces_nothing or empty_section or markup_only or re.fullmatch(r"\s*([-*+]|\d+[.)])\s*", line)):
                kept.append(line)
        if kept == lines:
            return re.sub(r"\n{3,}", "\n\n", "\n".join(kept))
        lines = kept
