"""`moxi evaluate --complete`: a section cut from each real README, restored by completion, scored."""

from __future__ import annotations

import json
import shutil

import pytest

from moxi_pipeline.cli import main
from moxi_pipeline.evaluation.completion import (
    CompletionConfig,
    evaluate_completion,
    removable_sections,
    remove_section,
)
from moxi_pipeline.readme.facts import repo_facts
from moxi_pipeline.records import RepoRecord


def _row(name: str) -> dict:
    readme = (f"# {name}\n\n{name} renames many files at once.\n\n## Installation\n\n```bash\npip install {name}\n```\n\n"
              f"### From source\n\nClone it.\n\n## Usage\n\nRun `{name} --help`.\n\n## License\n\n"
              f"{name} is released under the MIT license.\n")
    return {"repo": f"octo/{name}", "repo_url": f"https://github.com/octo/{name}", "readme": readme,
            "file_tree": ["pyproject.toml", f"{name}/__init__.py", f"{name}/cli.py", "LICENSE"], "language": "Python",
            "license": "MIT", "key_files": [{"path": "pyproject.toml", "content": f'[project]\nname = "{name}"\nlicense = "MIT"\n\n'
                                             f'[project.scripts]\n{name} = "{name}.cli:main"\n'}]}


def test_remove_section_takes_its_subsections_and_nothing_else():
    readme = _row("alpha")["readme"]
    stripped, removed = remove_section(readme, "installation")
    assert removed == "## Installation\n\n```bash\npip install alpha\n```\n\n### From source\n\nClone it."
    assert stripped == "# alpha\n\nalpha renames many files at once.\n\n## Usage\n\nRun `alpha --help`.\n\n## License\n\n" \
                       "alpha is released under the MIT license.\n"
    with pytest.raises(ValueError, match="no contributing section"):
        remove_section(readme, "contributing")


def test_removable_sections_are_those_the_facts_support():
    record = RepoRecord.model_validate({**_row("alpha"), "owner": "octo", "source": "jsonl"})
    assert removable_sections(record.readme, repo_facts(record)) == ["installation", "usage", "license"]


def test_evaluate_complete_on_two_records(tmp_path, monkeypatch, tiny_model_dir, capsys):
    monkeypatch.setenv("MOXI_DATA_DIR", str(tmp_path / "data"))
    shutil.copytree(tiny_model_dir, tmp_path / "data" / "models" / "base_model")
    records = tmp_path / "two.jsonl"
    records.write_text("\n".join(json.dumps(_row(name)) for name in ("alpha", "beta")) + "\n")
    out = tmp_path / "out"
    assert main(["evaluate", "--records", str(records), "--adapter", "none", "--complete", "--out", str(out),
                 "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mode"] == "complete" and metrics["n_repos"] == 2 and list(metrics["systems"]) == ["template", "base"]
    rows = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    # the kinds rotate: the first repository loses its Installation, the second its Usage
    assert [(r["repo"], r["section"]) for r in rows] == [("alpha", "installation"), ("beta", "usage")] * 2
    template_install = rows[0]
    # Installation is rendered from the facts: the same command comes back, so the install check passes
    assert template_install["restored_ok"] and template_install["install_ok"] is True
    assert template_install["text"].startswith("## Installation\n\n```bash\npip install alpha\n```\n\nOr build it from source:")
    assert template_install["rougeL"] > 0.5
    assert all(r["kept_original"] for r in rows) and all(r["unknown_paths"] == 0 for r in rows)
    assert metrics["systems"]["template"]["by_section"]["installation"]["n"] == 1
    assert "| rougeL |" in (out / "report.md").read_text()
    assert "template     restored" in capsys.readouterr().out


def test_a_section_not_restored_scores_zero(tmp_path):
    # a second Installation-kind heading stays behind, so completion adds nothing: restored_ok False, ROUGE 0
    row = _row("alpha")
    row["readme"] = row["readme"].replace("## Usage", "## Getting started\n\nAsk a friend.\n\n## Usage")
    record = RepoRecord.model_validate({**row, "owner": "octo", "source": "jsonl"})
    result = evaluate_completion(None, [record], CompletionConfig())
    (only,) = result["rows"]
    assert only["section"] == "installation" and not only["restored_ok"] and only["text"] == ""
    assert (only["rougeL"], only["install_ok"], only["kept_original"]) == (0.0, False, True)
    assert list(result["systems"]) == ["template"] and result["systems"]["template"]["restored"] == 0.0
