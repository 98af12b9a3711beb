"""The page: `build_app` makes the Gradio Blocks, `write_for_page` does the work (and is testable without Gradio).

One generation at a time (the queue's concurrency is 1: a CPU writes one README at a time, and the
others see their place in the queue). Every failure the user can cause — a missing folder, a private or
unknown GitHub repository, a bad or oversized .zip, an empty repository, no README to complete — comes
back as a message on the page; an unexpected error is named, without its stack trace.
"""

from __future__ import annotations

import difflib
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from moxi_pipeline.web.choices import ModelChoice, list_models, writer_for
from moxi_pipeline.web.inputs import (
    MAX_ZIP_BYTES,
    local_repository,
    own_readme,
    remote_repository,
    unpack_zip,
)

log = logging.getLogger(__name__)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


@dataclass(frozen=True)
class PageResult:
    status: str  # Markdown: what happened, or what was wrong with the input
    facts: str = ""
    readme: str = ""
    removed: str = ""
    diff: str = ""
    download: str | None = None  # path of the README file to download


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://", "github.com/", "git@"))


def facts_table(facts) -> str:
    rows = [("name", facts.name), ("description", facts.description), ("install", "; ".join(facts.install)),
            ("commands", "; ".join(facts.commands)), ("tests", facts.test_command), ("license", facts.license),
            ("frameworks", ", ".join(facts.frameworks)), ("ecosystem", facts.ecosystem)]
    cells = [f"| {key} | {str(value).replace('|', '/') if value else '—'} |" for key, value in rows]
    return "\n".join(["| fact | value |", "|---|---|", *cells])


def removed_text(report) -> str:
    if not report.total():
        return "The grounding pass removed nothing: every path, URL and command is backed by the repository."
    lines = [(f"The grounding pass removed {report.paths} unknown paths, {report.urls} invented URLs, "
              f"{report.commands} unsupported commands (each is named nowhere in the repository or its facts) and "
              f"{report.items} invented list items:"), ""]
    return "\n".join(lines + [f"- `{item}`" for item in report.removed])


_MODELS: dict = {}  # the one loaded model: {(kind, path, device): (model, tokenizer)}


def _load(choice: ModelChoice, settings, device: str):
    from moxi_pipeline.models.writer import load_writer

    key = (choice.kind, str(choice.path), device)
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = load_writer(writer_for(choice, settings), device)
    return _MODELS[key]


def _repository(location: str, upload, settings, scratch: Path):
    if upload:
        return local_repository(str(unpack_zip(getattr(upload, "name", upload), scratch / "upload")))
    location = (location or "").strip()
    if not location:
        raise ValueError("give a folder on the server, a GitHub URL, or upload a .zip of the repository")
    return remote_repository(location, settings) if _is_url(location) else local_repository(location)


def write_for_page(location: str, upload, model_label: str, complete: bool, settings, device: str = "auto",
                   progress: Callable[[str, int, int], None] | None = None) -> PageResult:
    """The page's one action, as plain Python: repository in, README and what the page shows out."""
    from moxi_pipeline.readme.complete import complete_readme
    from moxi_pipeline.readme.compose import write_readmes
    from moxi_pipeline.readme.decoding import DecodingConfig

    try:
        choice = next((c for c in list_models(settings) if c.label == model_label), None)
        if choice is None:
            raise ValueError(f"model {model_label!r} is not available; reload the page for the current list")
        scratch = Path(tempfile.mkdtemp(prefix="moxi-serve-"))
        repo = _repository(location, upload, settings, scratch)
        original = own_readme(repo) if complete else None
        if complete and original is None:
            raise ValueError(f"{repo.repo} has no README to complete; untick 'complete' to write one from scratch")
        model, tokenizer = _load(choice, settings, device) if choice.kind != "template" else (None, None)
        if complete:
            written = complete_readme(model, tokenizer, repo, original, DecodingConfig(), progress)
            added = ", ".join(written.added) or "nothing: it has every section the facts support"
            status = f"Completed the README of **{repo.repo}** with {choice.label}: added {added}."
        else:
            written = write_readmes(model, tokenizer, [repo], DecodingConfig(), progress=progress)[0]
            status = f"Wrote a README for **{repo.repo}** with {choice.label}."
        download = scratch / "README.md"
        download.write_text(written.text, encoding="utf-8")
        diff = "".join(difflib.unified_diff(original.splitlines(keepends=True), written.text.splitlines(keepends=True),
                                            "README.md (yours)", "README.md (completed)")) if complete else ""
        return PageResult(status, facts_table(written.facts), written.text, removed_text(written.grounding), diff,
                          str(download))
    except (ValueError, OSError) as error:
        return PageResult(f"**Could not write a README:** {error}")
    except Exception as error:  # the page shows a message, never a stack trace; the log keeps it
        log.exception("moxi serve: unexpected error")
        return PageResult(f"**Something went wrong:** {type(error).__name__}: {error}")


def build_app(settings, device: str = "auto"):
    import gradio as gr

    labels = [choice.label for choice in list_models(settings)]
    with gr.Blocks(title="Moxi: a README for your repository") as app:
        gr.Markdown("# Moxi\nA README for your repository, written from what is in it: facts first, a small model "
                    "for the prose, and nothing the repository does not back.")
        with gr.Row():
            with gr.Column(scale=1):
                location = gr.Textbox(label="Folder on the server, or GitHub URL", elem_id="location",
                                      placeholder="/path/to/repo or https://github.com/owner/repo")
                upload = gr.File(label=f"…or upload a .zip of the repository (up to {MAX_ZIP_BYTES // 1_000_000} MB)",
                                 file_types=[".zip"], elem_id="upload")
                model = gr.Dropdown(labels, value=labels[0], label="Model", elem_id="model")
                complete = gr.Checkbox(label="Complete the repository's own README (keep it, add only what it lacks)",
                                       elem_id="complete")
                go = gr.Button("Write the README", variant="primary", elem_id="write")
            with gr.Column(scale=1):
                status = gr.Markdown(elem_id="status")
                facts = gr.Markdown(label="Facts", elem_id="facts")
        with gr.Tabs():
            with gr.Tab("README"):
                rendered = gr.Markdown(elem_id="rendered")
            with gr.Tab("Markdown"):
                raw = gr.Code(language="markdown", elem_id="raw")
            with gr.Tab("Removed by grounding"):
                removed = gr.Markdown(elem_id="removed")
            with gr.Tab("Diff"):
                diff = gr.Code(elem_id="diff")
        download = gr.File(label="Download README.md", elem_id="download")

        def run(location_value, upload_value, model_label, complete_value, progress=gr.Progress()):  # noqa: B008 (Gradio's documented way to get progress)
            def step(what: str, done: int, total: int) -> None:
                progress((done, total), desc=f"section {what}")

            result = write_for_page(location_value, upload_value, model_label, complete_value, settings, device, step)
            return (result.status, result.facts, result.readme, result.readme, result.removed, result.diff,
                    result.download)

        go.click(run, [location, upload, model, complete], [status, facts, rendered, raw, removed, diff, download])
    app.queue(default_concurrency_limit=1)
    return app


def serve(settings, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, device: str = "auto") -> None:
    build_app(settings, device).launch(server_name=host, server_port=port, max_file_size=MAX_ZIP_BYTES,
                                       show_error=False)
