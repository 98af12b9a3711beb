"""The Dagster UI in a real browser: Debian's chromium, driven by Playwright, against `dagster dev`.

`dagster dev` runs with the project's workspace.yaml and dagster.yaml (webserver, daemon and code server,
as `make dev` starts them) on 127.0.0.1, a free port, a temporary DAGSTER_HOME and data folder, and a
three-repository jsonl source, so materializing raw_readmes takes seconds. Screenshots land in
test-artifacts/ui_browser/. Without chromium (`apt-get install -y chromium`; `make test` installs it) or
Playwright (the dev extra) the tests are skipped, and pytest's summary (-ra) prints why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from moxi_pipeline.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "ui_browser"
CHROMIUM = next(filter(None, (shutil.which(name) for name in ("chromium", "chromium-browser"))), None)
START_TIMEOUT_S = 60
RUN_TIMEOUT_S = 60

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install -e '.[dev]'")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed: `apt-get install -y chromium` (make test does it as root)"
)


def _records(path: Path, n_repos: int = 3) -> Path:
    rows = []
    for i in range(n_repos):
        name = f"tool{i}"
        readme = (f"# {name}\n\nA command line tool number {i} that renames files in bulk.\n\n"
                  f"## Installation\n\n```bash\npip install {name}\n```\n\n## Usage\n\nRun `{name} --help`.\n")
        rows.append({"repo": f"octo/{name}", "repo_url": f"https://github.com/octo/{name}", "readme": readme,
                     "file_tree": ["pyproject.toml", f"{name}/cli.py"], "language": "Python",
                     "key_files": [{"path": "pyproject.toml", "content": f'[project]\nname = "{name}"\n'}]})
    path.write_text("\n".join(json.dumps(row) for row in rows))
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _default_signals() -> None:
    # A shell that started pytest in the background may ignore SIGINT/SIGTERM, and children inherit that.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster dev exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"{url}/server_info", timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"dagster dev did not answer on {url} in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory):
    """`dagster dev` on 127.0.0.1: yields (url, data_dir); stops its whole process group afterwards."""
    tmp = tmp_path_factory.mktemp("ui")
    home, data_dir, log = tmp / "dagster_home", tmp / "data", tmp / "dagster_dev.log"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    # no external service the developer's shell may point at: records stay in the temporary data folder
    env = {key: value for key, value in os.environ.items() if key not in {env_name(f) for f in Settings.model_fields}}
    env.update(DAGSTER_HOME=str(home), MOXI_DATA_DIR=str(data_dir), MOXI_COLLECT_SOURCE="jsonl",
               MOXI_COLLECT_PATH=str(_records(tmp / "records.jsonl")),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    dagster = Path(sys.executable).with_name("dagster")
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT, env=env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_default_signals,
        )
    try:
        _wait_until_up(url, process, log)
        yield url, data_dir
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # dagster dev shuts its webserver, daemon and code server down
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def page():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: chromium's sandbox refuses to run as root, as in CI containers
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def test_the_asset_graph_shows_every_pipeline_asset(dagster_ui, page):
    from moxi_pipeline.definitions import defs

    url, _ = dagster_ui
    names = sorted(key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys())
    assert {"raw_readmes", "readme_chunks", "sft_dataset", "lora_adapter", "eval_report", "run_comparison"} <= set(names)
    page.goto(f"{url}/asset-groups")
    # The global lineage shows each group collapsed; the graph's settings menu expands them.
    page.locator('[aria-label="unfold_more"]').first.wait_for()
    page.locator('[aria-label="settings"]').last.click()
    page.get_by_role("menuitem", name="Expand all groups").click()
    for name in names:
        page.get_by_text(name, exact=True).first.wait_for(state="visible")
    page.screenshot(path=ARTIFACTS / "asset_graph.png")
    assert (ARTIFACTS / "asset_graph.png").stat().st_size > 10_000


def test_materialize_raw_readmes_from_the_ui(dagster_ui, page):
    url, data_dir = dagster_ui
    page.goto(f"{url}/assets/raw_readmes")
    page.get_by_role("button").filter(has_text=re.compile(r"^Materialize$")).click()
    toast = page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}"))
    run_prefix = toast.inner_text().split()[-1]
    page.goto(f"{url}/runs")
    page.locator(f'a[href*="/runs/{run_prefix}"]').first.click()
    page.wait_for_url(re.compile(rf"/runs/{run_prefix}[0-9a-f-]+"))
    # The run page's status tag turns to Success when the run worker finishes (the daemon dequeued it).
    page.get_by_text("Success", exact=True).first.wait_for(timeout=RUN_TIMEOUT_S * 1000)
    page.screenshot(path=ARTIFACTS / "raw_readmes_run.png")

    page.goto(f"{url}/assets/raw_readmes")
    page.get_by_text("repositories", exact=True).first.wait_for()  # the materialization's metadata
    page.screenshot(path=ARTIFACTS / "raw_readmes_materialized.png")
    stored = (data_dir / "records" / "raw_readmes.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["repo_url"] for line in stored) == [f"https://github.com/octo/tool{i}" for i in range(3)]
