"""Secrets go only to the host the operator configured in the environment: a run config cannot redirect them."""

from __future__ import annotations

import dagster as dg
import pytest

from moxi_pipeline.collect.github import GitHubClient
from moxi_pipeline.settings import load_settings, may_send_secret
from moxi_pipeline_tests.fake_github import FakeGitHub, FakeRepo

TOKEN = "ghp_SECRETtoken1234567890abcdefghijklmnop"


@pytest.mark.parametrize(
    ("url", "trusted", "allowed"),
    [
        ("https://api.github.com", "https://api.github.com", True),
        ("https://api.github.com/repos/o/r", "https://api.github.com", True),
        ("https://API.github.com", "https://api.github.com", True),  # host names are case-blind
        ("http://api.github.com", "https://api.github.com", False),  # a downgrade to plain HTTP
        ("http://api.github.com", "http://api.github.com", False),  # plain HTTP off loopback, even when configured
        ("https://evil.example", "https://api.github.com", False),
        ("https://api.github.com.evil.example", "https://api.github.com", False),
        ("https://api.github.com@evil.example", "https://api.github.com", False),
        ("https://user:pw@api.github.com", "https://api.github.com", False),
        ("https://api.github.com:8443", "https://api.github.com", False),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000", True),
        ("http://localhost:9000/v1", "http://localhost:9000", True),
        ("http://[::1]:9000", "http://[::1]:9000", True),
        ("http://127.0.0.1:9001", "http://127.0.0.1:9000", False),  # another loopback port is another server
        ("http://127.0.0.1:x", "http://127.0.0.1:9000", False),
        ("", "https://api.github.com", False),
        ("https://api.github.com", None, False),
    ],
)
def test_a_secret_may_go_only_to_the_configured_host_over_https_or_loopback(url, trusted, allowed):
    assert may_send_secret(url, trusted) is allowed


def test_the_github_client_sends_no_token_over_plain_http_off_loopback():
    client = GitHubClient("http://github.internal", token=TOKEN)
    assert "Authorization" not in client._headers("http://github.internal/repos/o/r", "x", None)
    assert GitHubClient("https://github.internal", token=TOKEN)._headers(
        "https://github.internal/repos/o/r", "x", None)["Authorization"] == f"Bearer {TOKEN}"


def _materialize(tmp_path, monkeypatch, run_config_url: str, settings_url: str):
    from moxi_pipeline.defs import collect as collect_defs
    from moxi_pipeline.defs.io_managers import LocalRecordIOManager

    monkeypatch.setattr(collect_defs, "SETTINGS", load_settings({"GITHUB_TOKEN": TOKEN, "MOXI_GITHUB_API_URL": settings_url}))
    config = {"source": "github", "awesome_lists": str(tmp_path / "list.md"), "github_api_url": run_config_url,
              "state_dir": str(tmp_path / "data")}
    return dg.materialize([collect_defs.raw_readmes], resources={"io_manager": LocalRecordIOManager(data_dir=str(tmp_path / "data"))},
                          run_config={"ops": {"raw_readmes": {"config": config}}}, raise_on_error=False)


def test_a_run_config_pointing_raw_readmes_at_another_server_gets_no_token(tmp_path, monkeypatch):
    (tmp_path / "list.md").write_text("[x](https://github.com/octo/hello)")
    repos = {"octo/hello": FakeRepo(readme="# Hello\n\nSays hello.\n", files={"main.go": "package main\n"}, language="Go")}
    with FakeGitHub(repos) as trusted, FakeGitHub(repos) as other:
        result = _materialize(tmp_path, monkeypatch, run_config_url=other.url, settings_url=trusted.url)
        assert result.success
        assert other.requests and {h.get("Authorization") for _, h in other.requests} == {None}
        assert trusted.requests == []
        # the operator's own API (loopback here, so plain HTTP is allowed) does get it
        result = _materialize(tmp_path, monkeypatch, run_config_url=trusted.url, settings_url=trusted.url)
        assert result.success
        assert {h.get("Authorization") for _, h in trusted.requests} == {f"Bearer {TOKEN}"}


def test_an_openai_base_url_from_run_config_that_is_not_the_environments_is_refused(monkeypatch):
    from moxi_pipeline.defs.resources import OpenAIClient

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-secret-key")
    with pytest.raises(dg.Failure, match=r"base_url='https://evil.example/v1' is not OPENAI_BASE_URL"):
        OpenAIClient(api_key="sk-local-secret-key", base_url="https://evil.example/v1").setup_for_execution(
            dg.build_init_resource_context())
    with pytest.raises(dg.Failure, match="base_url=None"):  # OpenAI's own API is not the configured one either
        OpenAIClient(api_key="sk-local-secret-key").setup_for_execution(dg.build_init_resource_context())
    client = OpenAIClient(api_key="sk-local-secret-key", base_url="http://127.0.0.1:8000/v1")
    client.setup_for_execution(dg.build_init_resource_context())
    assert str(client._client.base_url) == "http://127.0.0.1:8000/v1/"
