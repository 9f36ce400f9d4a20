"""An exam's attribute reports, from the command line (the API and web pages: tests/web)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.integration.exams.exam_samples import registered_trial_cli, write_exam
from trialship.cli import main


def test_the_report_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALSHIP_ADMIN_PASSWORD", "first admin password")
    run = registered_trial_cli(tmp_path / "data")
    write_exam(tmp_path / "in", 2)
    assert run("import", str(tmp_path / "in"), "--trial", "ACM-301").exit_code == 0
    shown = run("exam", "report", "--trial", "ACM-301", "1", "--json")
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.output)
    assert [f["report"] for f in document["files"]] == [0, 0]
    table = run("exam", "report", "--trial", "ACM-301", "1")
    assert table.exit_code == 0
    assert table.output.startswith("report 1, for 2 file(s): ")
    assert "(0010,0010)" in table.output and "replaced" in table.output
    assert CliRunner().invoke(main, ["exam", "--help"]).exit_code == 0
