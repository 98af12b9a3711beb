"""Properties over generated input: nothing dropped, nothing mixed, nothing read from outside the repository.

Each property runs on inputs hypothesis generates (hostile Markdown, odd JSON, repository trees full of
symlinks, FIFOs, huge and binary files and non-UTF-8 names); conftest prints how many cases each tried.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moxi_pipeline.collect import collect_repos, scan_repository
from moxi_pipeline.collect.key_files import MAX_KEY_FILE_CHARS
from moxi_pipeline.dataset.chunk import chunk_readme
from moxi_pipeline.dataset.samples import split_by_repo
from moxi_pipeline.records import Artifact, KeyFile, RepoRecord
from moxi_pipeline.storage import LocalStore

# No example database: runs stay independent and leave no .hypothesis/ folder in the checkout.
PROPERTY = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


# --- chunking keeps every non-blank line of the raw README ------------------------------------------

# Characters that break lines somewhere (str.splitlines, YAML) but not in Markdown, plus Markdown syntax.
SEPARATORS = ["\u2028", "\u2029", "\x85"]
INLINE = st.text(
    alphabet=st.sampled_from([*"abcXYZ 19:#-*_=|`~<>!.\t", "é", "日", "\ufeff", *SEPARATORS]), max_size=24
)
BLOCKS = st.one_of(
    st.builds(lambda level, text: "#" * level + " " + text, st.integers(1, 7), INLINE),
    st.builds(lambda text, rule: f"{text}\n{rule}", INLINE, st.sampled_from(["===", "---", "  ----"])),
    st.sampled_from(["---", "***", "___", "- - -", "---   ", "...", "<hr>"]),
    st.builds(
        lambda marker, lang, body, closed: f"{marker}{lang}\n" + "\n".join(body) + (f"\n{marker}" if closed else ""),
        st.sampled_from(["```", "~~~", "````"]), INLINE, st.lists(INLINE, max_size=5), st.booleans(),
    ),
    st.builds(lambda rows: "| a | b |\n|---|:-:|\n" + "\n".join(f"| {r} | x |" for r in rows), st.lists(INLINE, max_size=4)),
    st.builds(lambda text: f"<details>\n<summary>{text}</summary>\n\n{text}\n</details>", INLINE),
    st.builds(lambda text: f'<p align="center">\n  <img src="{text}">\n</p>', INLINE),
    st.builds(lambda level, text: f"<h{level}>{text}</h{level}>", st.integers(1, 6), INLINE),
    st.builds(lambda items: "\n".join(f"- {item}" for item in items), st.lists(INLINE, min_size=1, max_size=4)),
    st.builds(lambda lines: "\n".join(lines), st.lists(INLINE, min_size=1, max_size=6)),
    st.just(""),
)
FRONT_MATTER = st.builds(
    lambda pairs, closer: "---\n" + "\n".join(f"{key}: {value}" for key, value in pairs) + f"\n{closer}",
    st.lists(st.tuples(st.sampled_from(["title", "layout", "tags"]), INLINE), max_size=3), st.sampled_from(["---", "..."]),
)


@st.composite
def raw_readmes(draw) -> str:
    blocks = draw(st.lists(BLOCKS, max_size=14))
    if draw(st.booleans()):
        blocks.insert(0, draw(FRONT_MATTER))
    lines = "\n".join(blocks).split("\n")
    endings = draw(st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(lines), max_size=len(lines)))
    return draw(st.sampled_from(["", "\ufeff"])) + "".join(line + end for line, end in zip(lines, endings))


def kept_lines(raw: str) -> list[str]:
    """The spec: every non-blank line of the raw README, after a leading BOM and front matter (a YAML mapping
    with single-word keys between a `---` first line and the next `---`/`...` line)."""
    lines = re.split(r"\r\n|\r|\n", raw)
    lines[0] = lines[0].lstrip("\ufeff")
    start = 0
    if re.fullmatch(r"---[ \t]*", lines[0]):
        closer = next((j for j in range(1, len(lines)) if re.fullmatch(r"(---|\.\.\.)[ \t]*", lines[j])), None)
        if closer is not None:
            try:
                metadata = yaml.safe_load("\n".join(lines[1:closer]))
            except yaml.YAMLError:
                metadata = None
            keys = list(metadata) if isinstance(metadata, dict) else []
            start = closer + 1 if keys and all(isinstance(k, str) and re.fullmatch(r"\S+", k) for k in keys) else 0
    return [line for line in lines[start:] if line.strip()]


@settings(PROPERTY, max_examples=1000)
@given(readme=raw_readmes(), min_chars=st.integers(1, 300), extra_chars=st.integers(0, 600))
def test_chunks_keep_every_nonblank_raw_line_in_order(readme, min_chars, extra_chars):
    chunks = chunk_readme(readme, min_chars, min_chars + extra_chars)
    assert [line for chunk in chunks for line in chunk.text.split("\n") if line.strip()] == kept_lines(readme)


# --- a record survives store -> load unchanged -----------------------------------------------------

# Lone surrogates arrive from JSON escapes ("\udcff") and non-UTF-8 file names; pydantic keeps them in plain
# string fields but refuses them in constrained ones (min_length) and in dict keys, so those draw clean text.
ODD_CHARS = st.one_of(st.characters(exclude_categories=["Cs"]), st.sampled_from(["\r", "\n", "\x00", "\ufeff", '"', "\\", *SEPARATORS]))
CLEAN_TEXT = st.text(alphabet=ODD_CHARS, max_size=30)
# (joined by hand: st.text drops surrogates from any alphabet)
ODD_TEXT = st.lists(st.one_of(ODD_CHARS, st.sampled_from(["\udcff", "\udc80", "\ud800"])), max_size=30).map("".join)
NONBLANK = CLEAN_TEXT.filter(lambda text: text.strip())
# JSON has no NaN or infinity (pydantic's JSON mode writes them as null), so metadata draws finite floats.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | CLEAN_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(CLEAN_TEXT, children, max_size=3),
    max_leaves=8,
)
RECORDS = st.builds(
    RepoRecord,
    repo_url=NONBLANK, owner=ODD_TEXT, repo=NONBLANK, readme=ODD_TEXT.filter(lambda text: text.strip()),
    file_tree=st.lists(ODD_TEXT, max_size=4).map(tuple),
    key_files=st.lists(st.builds(KeyFile, path=NONBLANK, content=ODD_TEXT), max_size=3).map(tuple),
    language=st.none() | ODD_TEXT, license=st.none() | ODD_TEXT, project_type=ODD_TEXT,
    source=st.sampled_from(["installed", "jsonl", "local", "github"]),
)
_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def _holds_surrogate_pair(value) -> bool:
    """Two code points JSON can only write as one character: the store must refuse them, not merge them."""
    return bool(_SURROGATE_PAIR.search(json.dumps(value, ensure_ascii=False)))


@settings(PROPERTY, max_examples=300)
@given(records=st.lists(RECORDS, max_size=4), metadata=st.dictionaries(CLEAN_TEXT, JSON_VALUES, max_size=4))
def test_records_survive_the_local_store_unchanged(records, metadata):
    artifact = Artifact(name="a", path="p", metadata=metadata)
    rows = [record.to_dict() for record in records]
    with tempfile.TemporaryDirectory() as folder:
        store = LocalStore(folder)
        if _holds_surrogate_pair(rows):
            with pytest.raises(ValueError, match="surrogate pair"):
                store.write_records("r", rows)
            assert not store.records_path("r").exists()  # refused whole: no half-written file
            return
        store.write_records("r", rows)
        store.write_json("a", artifact.to_dict())
        assert [RepoRecord.model_validate(row) for row in store.read_records("r")] == records
        assert Artifact.model_validate(store.read_json("a")) == artifact


# --- no read ever leaves the repository root -------------------------------------------------------

_OPENED: list[str] | None = None  # paths opened or listed while a property is recording


def _audit(event: str, args: tuple) -> None:
    if _OPENED is not None and event in ("open", "os.scandir", "os.listdir") and isinstance(args[0], (str, bytes)):
        _OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # hooks last for the process: the check above costs one comparison when idle

KINDS = (
    "text", "binary", "big_text", "sparse_2gb", "dir", "fifo", "link_out_file", "link_out_dir", "link_in_file",
    "link_in_dir", "link_dev", "link_root", "link_parent", "link_dangling", "link_loop", "gitdir_out",
)
NAMES = st.one_of(
    st.sampled_from([
        b"README.md", b"readme", b"Makefile", b"setup.py", b"pyproject.toml", b"package.json", b"main.py",
        b"__init__.py", b".gitignore", b".git", b"src", b"docs", b"Cargo.toml", b"caf\xe9.py", b"\xff\xfe",
    ]),
    st.binary(min_size=1, max_size=6).filter(lambda name: b"/" not in name and b"\0" not in name and name not in (b".", b"..")),
)
FOLDERS = (b"", b"src/", b"pkg/", b"\xffdir/")
TREES = st.lists(st.tuples(st.sampled_from(FOLDERS), NAMES, st.sampled_from(KINDS)), max_size=10, unique_by=lambda e: e[0] + e[1])
SECRET = "SECRET-6b1f"


def _build_tree(base: Path, entries) -> tuple[bytes, list[bytes]]:
    """A repository at base/repo and secrets beside it at base/outside; returns (root, symlinked paths)."""
    outside = base / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "gitdir").mkdir()
    for path in (outside / "secret.txt", outside / "dir" / "Makefile", outside / "dir" / "README.md"):
        path.write_text(f"{SECRET}\n")
    (outside / "gitdir" / "config").write_text(f'[remote "origin"]\n\turl = https://github.com/{SECRET}/x\n')
    root = os.fsencode(base / "repo")
    for folder in FOLDERS:
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    links = []
    for folder, name, kind in entries:
        path = os.path.join(root, folder, name)
        if os.path.lexists(path):
            continue
        links += [os.path.join(folder, name)] if kind.startswith("link_") else []
        _make(path, kind, root, os.fsencode(outside))
    return root, links


def _make(path: bytes, kind: str, root: bytes, outside: bytes) -> None:
    targets = {
        "link_out_file": os.path.join(outside, b"secret.txt"), "link_out_dir": os.path.join(outside, b"dir"),
        "link_in_file": os.path.join(root, b"main.py"), "link_in_dir": os.path.join(root, b"src"),
        "link_dev": b"/dev/zero", "link_root": b"/", "link_parent": b"..", "link_dangling": b"nope", "link_loop": path,
    }
    if kind in targets:
        os.symlink(targets[kind], path)
    elif kind == "dir":
        os.mkdir(path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "sparse_2gb":
        with open(path, "wb") as handle:
            handle.truncate(2**31)
    else:
        content = {
            "text": b"# text\n\nprint(1)\n", "binary": b"\x00\x01\xff" * 20, "big_text": b"text line\n" * 120_000,
            "gitdir_out": b"gitdir: " + os.path.join(outside, b"gitdir") + b"\n",
        }[kind]
        with open(path, "wb") as handle:
            handle.write(content)


def _inside(root: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root + os.sep)


@pytest.mark.timeout(120)  # a read that blocks on a FIFO fails here instead of hanging the suite
@settings(PROPERTY, max_examples=300)
@given(entries=TREES)
def test_no_read_leaves_the_repository_root(entries):
    global _OPENED
    with tempfile.TemporaryDirectory() as folder:
        root_bytes, links = _build_tree(Path(folder), entries)
        root = os.path.realpath(os.fsdecode(root_bytes))
        _OPENED = []
        try:
            snapshot = scan_repository(root)
            collected = collect_repos("local", root)
        finally:
            opened, _OPENED = _OPENED, None
        outside = [path for path in opened if not _inside(root, path)]
        assert outside == []
        not_regular = [path for path in opened if os.path.isfile(path) is False and not os.path.isdir(path)]
        assert not_regular == []
        dumped = json.dumps([snapshot.file_tree, [k.to_dict() for k in snapshot.key_files], snapshot.repo_url,
                             [r.to_dict() for r in collected.records]], ensure_ascii=False)
        dumped.encode("utf-8")  # no lone surrogates from non-UTF-8 names
        assert SECRET not in dumped
        assert all(len(key_file.content) <= MAX_KEY_FILE_CHARS for key_file in snapshot.key_files)
        shown_links = {link.decode("utf-8", "replace") for link in links}
        for entry in snapshot.file_tree:
            assert not any(entry.startswith(link + "/") for link in shown_links), f"walked into the link {entry}"
        for link in links:  # a link is listed as a link, never as a plain file (names that decode cleanly)
            if link.decode("utf-8", "replace") == os.fsdecode(link):
                assert os.fsdecode(link) not in snapshot.file_tree


# --- the split never puts one repository on both sides ---------------------------------------------

OWNERS = st.text(alphabet="abcdeXYZ019-_.", min_size=1, max_size=8).filter(lambda s: s.strip(".") and s != "-")
SPELLINGS = (
    "https://{host}/{owner}/{name}", "http://{host}/{owner}/{name}/", "https://www.{host}/{owner}/{name}",
    "git@{host}:{owner}/{name}.git", "https://{host}/{owner}/{name}.git", "ssh://git@{host}/{owner}/{name}",
    "git://{host}/{owner}/{name}.git", "{host}/{owner}/{name}", " https://{host}/{owner}/{name}#readme ",
    "https://{host}/{owner}/{name}/tree/main/docs", "HTTPS://{host_upper}/{owner}/{name}", "git+https://{host}/{owner}/{name}",
)


@st.composite
def spelled_repos(draw) -> list[tuple[tuple[str, str, str], str]]:
    """(identity, URL) pairs: a few repositories, each under several spellings and letter cases."""
    repos = draw(st.lists(
        st.tuples(st.sampled_from(["github.com", "gitlab.com", "codeberg.org", "bitbucket.org"]), OWNERS, OWNERS),
        min_size=1, max_size=5, unique_by=lambda r: (r[0], r[1].lower(), r[2].lower()),
    ))
    rows = []
    for host, owner, name in repos:
        for spelling in draw(st.lists(st.sampled_from(SPELLINGS), min_size=1, max_size=4)):
            case = draw(st.sampled_from([str, str.upper, str.lower, str.swapcase]))
            url = spelling.format(host=host, host_upper=host.upper(), owner=case(owner), name=case(name))
            rows.append(((host, owner.lower(), name.lower()), url))
    return draw(st.permutations(rows))


@settings(PROPERTY, max_examples=500)
@given(rows=spelled_repos(), seed=st.integers(0, 3), test_fraction=st.floats(0.1, 0.9))
def test_one_repository_never_lands_on_both_sides(rows, seed, test_fraction):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "corpus.jsonl"
        lines = [{"repo_url": url, "readme": f"# r{i}\n\ntext", "file_tree": ["a.py"]} for i, (_, url) in enumerate(rows)]
        path.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
        result = collect_repos("jsonl", str(path))
    # each README names its line, so a record leads back to the repository that line spelled
    identity_of_url = {record.repo_url: rows[int(record.readme.split()[1][1:])][0] for record in result.records}
    assert sorted(identity_of_url.values()) == sorted({identity for identity, _ in rows})
    splits = split_by_repo([record.repo_url for record in result.records], test_fraction, seed)
    sides: dict[tuple, set[str]] = {}
    for url, split in splits.items():
        sides.setdefault(identity_of_url[url], set()).add(split)
    assert all(len(found) == 1 for found in sides.values())
    assert len(result.skipped) == len(rows) - len(result.records)
    assert all(skip.reason.startswith("duplicate repo_url") for skip in result.skipped)

