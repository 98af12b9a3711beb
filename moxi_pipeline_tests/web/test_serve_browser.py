"""`moxi serve` in a real browser: Debian's chromium, driven by Playwright, against the Gradio page.

`moxi serve` runs on 127.0.0.1, a free port and a temporary data folder (so the template writer is the
only model offered, and the test needs no weights), over a small fixture repository on disk. The test
writes a README, checks the rendered page and the facts, downloads the file, completes the repository's
own README and reads the diff, and gives a bad path; screenshots land in test-artifacts/serve_browser/.
Skipped, with the reason in pytest's summary, without Gradio (the `web` extra), Playwright or chromium.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from moxi_pipeline.settings import Settings, env_name
from moxi_pipeline_tests.readme.test_complete import make_renamer

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "serve_browser"
CHROMIUM = next(filter(None, (shutil.which(name) for name in ("chromium", "chromium-browser"))), None)
START_TIMEOUT_S = 90

pytest.importorskip("gradio", reason="Gradio is not installed: pip install -e '.[web]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install -e '.[dev]'")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed: `apt-get install -y chromium` (make test does it as root)"
)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _default_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`moxi serve` on 127.0.0.1: yields (url, repository folder); stops its process group afterwards."""
    tmp = tmp_path_factory.mktemp("serve")
    repo = make_renamer(tmp / "renamer")
    env = {key: value for key, value in os.environ.items() if key not in {env_name(f) for f in Settings.model_fields}}
    env.update(MOXI_DATA_DIR=str(tmp / "data"), GRADIO_ANALYTICS_ENABLED="False",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "moxi_pipeline.cli", "serve", "--port", str(port), "--device", "cpu"],
                                   cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=_default_signals)  # noqa: PLW1509 (as test_ui_browser.py)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"moxi serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"moxi serve did not answer on {url} in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield url, repo
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def page():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def _write(page, location: str, complete: bool = False) -> None:
    page.locator("#location textarea").fill(location)
    box = page.locator("#complete input[type=checkbox]")
    if box.is_checked() != complete:
        box.click()
    page.locator("#write").click()


def test_write_a_readme_check_facts_and_download_it(served, page, tmp_path):
    url, repo = served
    page.goto(url)
    _write(page, str(repo))
    page.locator("#status").get_by_text("Wrote a README for renamer").wait_for()
    rendered = page.locator("#rendered")
    rendered.get_by_role("heading", name="Installation").wait_for()
    assert rendered.get_by_role("heading", name="renamer", exact=True).is_visible()
    assert "pip install renamer" in rendered.inner_text()
    facts = page.locator("#facts").inner_text()
    assert "Rename files in bulk." in facts and "pip install renamer" in facts and "Click" in facts and "MIT" in facts
    page.screenshot(path=ARTIFACTS / "written.png", full_page=True)
    with page.expect_download() as download:
        page.locator("#download a").first.click()
    saved = tmp_path / "README.md"
    download.value.save_as(saved)
    text = saved.read_text()
    assert text.startswith("# renamer\n\nRename files in bulk.") and "## License" in text


def test_complete_the_repositorys_readme_and_read_the_diff(served, page):
    url, repo = served
    (repo / "README.md").write_text("# renamer\n\nMy own words, kept as they are.\n\n## Installation\n\nCopy it.\n")
    page.goto(url)
    _write(page, str(repo), complete=True)
    page.locator("#status").get_by_text("added built_with, usage, contributing, license").wait_for()
    assert "My own words, kept as they are." in page.locator("#rendered").inner_text()
    page.get_by_role("tab", name="Diff").click()
    diff = page.locator("#diff")
    diff.get_by_text("+## Built With").wait_for()
    assert "-" + "Copy it." not in diff.inner_text()  # the author's lines are context, never removed
    page.screenshot(path=ARTIFACTS / "completed_diff.png", full_page=True)


def test_a_bad_path_is_a_message_not_a_traceback(served, page):
    url, _ = served
    page.goto(url)
    _write(page, "/no/such/repository")
    page.locator("#status").get_by_text("'/no/such/repository' does not exist or is not a folder on the server").wait_for()
    assert "Traceback" not in page.content()
    page.screenshot(path=ARTIFACTS / "bad_path.png")
