"""The concurrent GitHub collector against a sequential baseline, and an unchanged re-run, on a fake API.

    .venv/bin/python benchmarks/collect.py --records FILE.jsonl [--latency-ms 50] [--concurrency 32] [--baseline-repos 40]

The fake GitHub API (moxi_pipeline_tests/fake_github.py, real HTTP on 127.0.0.1) serves every record of the
records file as a repository (its README, its file tree, its key files; other files empty), answering each
call after `--latency-ms`, as a far-away API would. One awesome list links them all. The sequential baseline
(concurrency 1) collects the first `--baseline-repos` repositories (repos/s is a rate, so a part measures it;
300 at 4 calls x 50 ms would take a minute), the concurrent collector all of them, then the re-run
all of them again with the first run's state. Prints a table, then exactly:
    collect: speedup=<x> calls_per_repo=<a> rerun_calls_per_repo=<b>
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fake server lives with the tests

from moxi_pipeline.collect.awesome import awesome_repo_urls  # noqa: E402
from moxi_pipeline.collect.github import GitHubClient  # noqa: E402
from moxi_pipeline.collect.github_repos import collect_github  # noqa: E402
from moxi_pipeline_tests.fake_github import FakeGitHub, FakeRepo  # noqa: E402

TOKEN = "benchmark-token"  # with a token the collector reads metadata and key files in one GraphQL call

def fake_repos(records_path: Path) -> dict[str, FakeRepo]:
    repos = {}
    for line in records_path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        item = json.loads(line)
        files = dict.fromkeys(item.get("file_tree") or [], "")
        files |= {k["path"]: k["content"] for k in item.get("key_files") or []}
        readme_path = item.get("readme_path") or "README.md"
        files.pop(readme_path, None)
        sha = item.get("commit") or hashlib.sha1(item["repo"].encode()).hexdigest()
        repos[item["repo"]] = FakeRepo(readme=item["readme"], readme_name=readme_path, files=files, sha=sha,
                                       language=item.get("language"))
    return repos


def timed(client: GitHubClient, urls: list[str], concurrency: int, state=None):
    start = time.perf_counter()
    run = collect_github(client, urls, state=state, concurrency=concurrency)
    return run, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", required=True, help="JSON Lines records: repo (owner/name), readme, file_tree, key_files")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--baseline-repos", type=int, default=40)
    args = parser.parse_args()

    repos = fake_repos(Path(args.records))
    with FakeGitHub(repos, latency_s=args.latency_ms / 1000) as fake, tempfile.TemporaryDirectory() as tmp:
        awesome = Path(tmp) / "awesome.md"
        awesome.write_text("\n".join(f"- [{name}](https://github.com/{name})" for name in repos))
        urls = awesome_repo_urls([str(awesome)], GitHubClient(fake.url))
        rows = []
        for label, subset, concurrency, state in (("sequential", urls[: args.baseline_repos], 1, None),
                                                  (f"concurrent x{args.concurrency}", urls, args.concurrency, None)):
            client = GitHubClient(fake.url, token=TOKEN)
            run, seconds = timed(client, subset, concurrency, state)
            rows.append((label, len(subset), len(run.records), seconds, client.total_calls, run))
        client = GitHubClient(fake.url, token=TOKEN)
        rerun, seconds = timed(client, urls, args.concurrency, rows[1][5].state)
        rows.append((f"re-run x{args.concurrency}", len(urls), len(rerun.records), seconds, client.total_calls, rerun))

    print(f"{len(repos)} repositories, {args.latency_ms:g} ms per call\n")
    print(f"| run | repos | collected | unchanged | seconds | repos/s | API calls | calls/repo |\n|---|---|---|---|---|---|---|---|")
    for label, n, collected, seconds, calls, run in rows:
        print(f"| {label} | {n} | {collected} | {run.unchanged} | {seconds:.2f} | {n / seconds:.1f} | {calls} | {calls / n:.2f} |")
    speedup = (rows[1][1] / rows[1][3]) / (rows[0][1] / rows[0][3])
    print(f"collect: speedup={speedup:.1f} calls_per_repo={rows[1][4] / rows[1][1]:.2f} "
          f"rerun_calls_per_repo={rows[2][4] / rows[2][1]:.2f}")


if __name__ == "__main__":
    main()
