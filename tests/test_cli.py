"""The command line as an office uses it: one clear line and a non-zero exit on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from trialship.cli import main


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRIALSHIP_ADMIN_PASSWORD", "first admin password")
    monkeypatch.setenv("TRIALSHIP_USER_PASSWORD", "another long password")
    data = tmp_path / "instance"

    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, ["--data", str(data), *args], input=input)

    result = run("init", "--admin-email", "admin@example.org")
    assert result.exit_code == 0, result.output
    return run


def test_init_creates_the_data_folder_keys_and_first_admin(cli, tmp_path: Path) -> None:
    data = tmp_path / "instance"
    assert (data / "trialship.db").exists() and (data / "fernet.key").exists()
    listing = cli("user", "list")
    assert "admin@example.org" in listing.output and "yes" in listing.output
    again = cli("init", "--admin-email", "other@example.org")
    assert again.exit_code == 0 and "Users exist already" in again.output


def test_registry_through_the_cli(cli) -> None:
    assert (
        cli(
            "trial",
            "add",
            "--protocol-id",
            "ACM-301",
            "--sponsor",
            "Acme",
            "--short-name",
            "Acme 301",
        ).exit_code
        == 0
    )
    assert cli("site", "add", "--trial", "ACM-301", "S01", "--name", "Main").exit_code == 0
    added = cli(
        "subject",
        "add",
        "--trial",
        "ACM-301",
        "SUBJ-001",
        "--site",
        "S01",
        "--baseline",
        "2026-01-01",
        "--mrn",
        "MRN-777|HOSP",
    )
    assert added.exit_code == 0, added.output
    assert (
        cli(
            "timepoint",
            "add",
            "--trial",
            "ACM-301",
            "BL",
            "--day",
            "0",
            "--minus",
            "14",
            "--expect",
            "CT:CHEST*:1",
        ).exit_code
        == 0
    )
    assert cli("timepoint", "add", "--trial", "ACM-301", "W12", "--day", "84").exit_code == 0
    listing = cli("timepoint", "list", "--trial", "ACM-301")
    assert "BL" in listing.output and "CT:CHEST*:1" in listing.output
    shown = cli("trial", "show", "ACM-301")
    assert "S01 (Main)" in shown.output and "subjects: 1" in shown.output
    audit = cli("audit", "--trial", "ACM-301")
    assert "subject.create" in audit.output
    assert "MRN-777" not in audit.output  # identifiers never reach the audit trail


def test_bad_input_gives_one_line_and_non_zero_exit(cli) -> None:
    cli("trial", "add", "--protocol-id", "P1", "--sponsor", "S", "--short-name", "N")
    cli("subject", "add", "--trial", "P1", "S-1")
    duplicate = cli("subject", "add", "--trial", "P1", "S-1")
    assert duplicate.exit_code == 1
    assert duplicate.output.strip() == "Error: subject_id: subject S-1 exists already in this trial"
    too_long = cli("subject", "add", "--trial", "P1", "X" * 65)
    assert too_long.exit_code == 2 and "DICOM LO allows 64" in too_long.output
    window = cli("timepoint", "add", "--trial", "P1", "T", "--minus", "-5", "--plus", "1")
    assert window.exit_code == 2 and "window ends before it starts" in window.output
    unknown = cli("site", "add", "--trial", "NOPE", "S01")
    assert unknown.exit_code == 1 and "no trial with protocol ID 'NOPE'" in unknown.output


def test_subject_csv_import_is_all_or_nothing(cli, tmp_path: Path) -> None:
    cli("trial", "add", "--protocol-id", "P1", "--sponsor", "S", "--short-name", "N")
    good = tmp_path / "good.csv"
    good.write_text("subject_id,baseline_date,identifiers\nA-1,2026-01-01,111|H\nA-2,,222\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("subject_id,baseline_date\nB-1,2026-01-01\nB-2,01/02/2026\n")
    dry = cli("subject", "import", "--trial", "P1", str(good), "--dry-run")
    assert dry.exit_code == 0 and "would be imported" in dry.output
    failed = cli("subject", "import", "--trial", "P1", str(bad))
    assert failed.exit_code == 2
    assert "line 3: baseline_date: must be a date as YYYY-MM-DD" in failed.output
    assert "subjects: 0" in cli("trial", "show", "P1").output
    assert cli("subject", "import", "--trial", "P1", str(good)).exit_code == 0
    assert "subjects: 2" in cli("trial", "show", "P1").output


def test_users_and_tokens(cli) -> None:
    assert cli("user", "add", "coord@example.org", "--name", "Coord").exit_code == 0
    created = cli("token", "create", "coord@example.org", "--name", "nightly")
    assert created.exit_code == 0
    assert created.stdout.strip().startswith("ts_")
    assert "nightly" in cli("token", "list").output
    assert cli("token", "revoke", "1").exit_code == 0
    assert cli("user", "disable", "coord@example.org").exit_code == 0
    assert "no" in cli("user", "list").output
    assert cli("user", "add", "not-an-email").exit_code == 2


def test_db_check_passes_after_init(cli) -> None:
    result = cli("db", "check")
    assert result.exit_code == 0 and "agree" in result.output


def test_a_folder_init_never_made_is_refused_in_a_line_and_left_as_it_was(tmp_path: Path) -> None:
    data = tmp_path / "instance"
    for args in (["trial", "list"], ["import", str(tmp_path), "--trial", "P1"], ["db", "check"]):
        result = CliRunner().invoke(main, ["--data", str(data), *args])
        assert result.exit_code == 2, result.output
        assert result.output == (
            f"Error: {data} is not a trialship data folder: run `trialship init` there first, "
            "or name the folder with --data or TRIALSHIP_DATA\n"
        )
    assert not data.exists()


def test_a_database_behind_or_missing_names_the_command_to_run(cli, tmp_path: Path) -> None:
    assert cli("db", "downgrade", "0005_submissions").exit_code == 0
    behind = cli("trial", "list")
    assert behind.exit_code == 2
    assert "at revision 0005_submissions" in behind.output
    assert "run `trialship db upgrade`" in behind.output
    assert cli("db", "upgrade").exit_code == 0
    assert cli("trial", "list").exit_code == 0
    (tmp_path / "instance" / "trialship.db").unlink()
    missing = cli("trial", "list")
    assert missing.exit_code == 2
    assert missing.output == "Error: the database has no trialship schema: run `trialship init`\n"
    assert not (tmp_path / "instance" / "trialship.db").exists()


def test_trial_profile_export_and_import_keep_the_secret(cli, tmp_path: Path) -> None:
    from trialship.deid import parse_profile

    cli("trial", "add", "--protocol-id", "P1", "--sponsor", "Acme", "--short-name", "N")
    plain = cli("trial", "profile", "export", "P1")
    assert plain.exit_code == 0 and "uid_secret" not in plain.output
    assert 'protocol_id = "P1"' in plain.output
    full = cli("trial", "profile", "export", "P1", "--include-secret")
    profile = parse_profile(full.output)
    assert profile.trial.protocol_id == "P1" and len(profile.uid_secret or b"") >= 32
    again = cli("trial", "profile", "export", "P1", "--include-secret")
    assert again.output == full.output  # the secret is made once and kept
    standalone = tmp_path / "profile.toml"
    text = (
        '[trial]\nsponsor_name = "X"\nprotocol_id = "OTHER"\n[deid]\n'
        'options = ["clean_descriptors"]\nuid_secret = "' + "s" * 40 + '"\n'
    )
    standalone.write_text(text)
    wrong = cli("trial", "profile", "import", "P1", str(standalone))
    assert wrong.exit_code == 2
    assert "trial.protocol_id: is the profile of protocol 'OTHER', not of P1" in wrong.output
    standalone.write_text(text.replace('"OTHER"', '"P1"'))
    assert cli("trial", "profile", "import", "P1", str(standalone)).exit_code == 0
    imported = parse_profile(cli("trial", "profile", "export", "P1", "--include-secret").output)
    assert imported.uid_secret == b"s" * 40
    assert imported.trial.sponsor_name == "Acme"  # the registry's trial fields win
    assert "trial.profile_export" in cli("audit", "--action", "trial.profile").output
