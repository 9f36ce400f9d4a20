"""Test connection against real peers: sshd (first contact, pin, success, mismatch), C-ECHO to
storescp and Orthanc, QIDO-RS to Orthanc; the same through the command line."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.conftest import SYSTEM
from tests.integration.destinations.conftest import authorize, new_host_key
from tests.integration.transfer.peers import NetNamespace, Orthanc, Sshd, Storescp
from trialship.app import Runtime
from trialship.registry.delivery import Destination
from trialship.registry.models import AuditEvent, Trial
from trialship.services import destinations


def _add(runtime: Runtime, trial: Trial, fields: dict) -> int:
    with runtime.db.unit_of_work() as session:
        dest = destinations.add_destination(
            session, SYSTEM, runtime.vault, session.merge(trial), fields, runtime.today()
        )
        return dest.id


def _test(runtime: Runtime, dest_id: int, ns: NetNamespace | None = None):
    def run():
        with runtime.db.unit_of_work() as session:
            dest = session.get(Destination, dest_id)
            assert dest is not None
            return destinations.check_connection(
                session, SYSTEM, runtime.vault, dest, runtime.today()
            )

    return ns.call(run) if ns is not None else run()


def test_sftp_first_contact_pin_success_then_a_changed_host_key_fails_with_both(
    runtime: Runtime, make_trial: Callable[..., Trial], sshd: Sshd, tmp_path: Path
) -> None:
    remote = tmp_path / "incoming"
    remote.mkdir()
    (remote / "hello.txt").write_text("x")
    trial = make_trial("SSH-1")
    dest_id = _add(
        runtime,
        trial,
        {
            "name": "sponsor",
            "kind": "sftp",
            "host": "127.0.0.1",
            "port": sshd.port,
            "username": "root",
            "remote_path": f"{remote}/{{protocol_id}}/{{subject_id}}/",
        },
    )
    with runtime.db.unit_of_work() as session:
        authorize(sshd, session.get(Destination, dest_id).public_key)  # type: ignore[union-attr]

    first = _test(runtime, dest_id)
    assert first.outcome == "unpinned" and first.host_key is not None
    assert first.host_key.fingerprint == sshd.fingerprint and sshd.fingerprint in first.message
    with runtime.db.unit_of_work() as session:
        dest = session.get(Destination, dest_id)
        assert dest is not None and dest.host_key_fingerprint is None
        assert dest.pending_host_key_fingerprint == sshd.fingerprint
        destinations.pin_host_key(session, SYSTEM, dest, sshd.fingerprint, runtime.today())

    ok = _test(runtime, dest_id)
    assert ok.ok, ok.message
    assert f"{remote} lists 1 entries" in ok.message

    old = sshd.fingerprint
    new_host_key(sshd)
    assert sshd.fingerprint != old
    mismatch = _test(runtime, dest_id)
    assert mismatch.outcome == "failed" and "host key mismatch" in mismatch.message
    assert old in mismatch.message and sshd.fingerprint in mismatch.message
    with runtime.db.unit_of_work() as session:
        dest = session.get(Destination, dest_id)
        assert dest is not None and dest.host_key_fingerprint == old  # still the pinned one
        outcomes = [
            e.details["outcome"]
            for e in session.query(AuditEvent).filter_by(action="destination.test")
        ]
    assert outcomes == ["unpinned", "ok", "failed"]


def test_sftp_wrong_client_key_fails_at_authentication(
    runtime: Runtime, make_trial: Callable[..., Trial], sshd: Sshd
) -> None:
    trial = make_trial("SSH-2")
    dest_id = _add(
        runtime,
        trial,
        {"name": "s", "kind": "sftp", "host": "127.0.0.1", "port": sshd.port, "username": "root"},
    )
    _test(runtime, dest_id)
    with runtime.db.unit_of_work() as session:
        dest = session.get(Destination, dest_id)
        assert dest is not None
        destinations.pin_host_key(session, SYSTEM, dest, sshd.fingerprint, runtime.today())
    result = _test(runtime, dest_id)  # our key is not in authorized_keys
    assert result.outcome == "failed" and "authentication failed" in result.message


def test_c_echo_to_storescp_and_orthanc_and_a_wrong_called_aet(
    runtime: Runtime,
    make_trial: Callable[..., Trial],
    netns: NetNamespace,
    storescp: Storescp,
    orthanc: Orthanc,
) -> None:
    trial = make_trial("ECHO-1")
    to_storescp = _add(
        runtime,
        trial,
        {
            "name": "scp",
            "kind": "dicom",
            "host": "127.0.0.1",
            "port": storescp.port,
            "called_aet": storescp.aet,
        },
    )
    to_orthanc = _add(
        runtime,
        trial,
        {
            "name": "orthanc",
            "kind": "dicom",
            "host": "127.0.0.1",
            "port": orthanc.dicom_port,
            "called_aet": "ORTHANC",
            "calling_aet": "TRIALSHIP",
        },
    )
    wrong = _add(
        runtime,
        trial,
        {
            "name": "wrong",
            "kind": "dicom",
            "host": "127.0.0.1",
            "port": orthanc.dicom_port,
            "called_aet": "NOTORTHANC",
        },
    )
    assert _test(runtime, to_storescp, netns).ok
    result = _test(runtime, to_orthanc, netns)
    assert result.ok and "C-ECHO" in result.message
    refused = _test(runtime, wrong, netns)
    # Orthanc answers a wrong called AE title with A-ASSOCIATE-RJ and closes the connection;
    # under load the close can reach the client first, which then sees an abort (seen once in
    # CI). Either way the test fails, naming the association.
    assert refused.outcome == "failed" and not refused.ok
    assert "NOTORTHANC" in refused.message
    assert "rejected" in refused.message or "aborted" in refused.message


def test_qido_to_orthanc_and_a_wrong_path(
    runtime: Runtime, make_trial: Callable[..., Trial], netns: NetNamespace, orthanc: Orthanc
) -> None:
    trial = make_trial("QIDO-1")
    base = f"http://127.0.0.1:{orthanc.http_port}"
    good = _add(
        runtime,
        trial,
        {
            "name": "dw",
            "kind": "dicomweb",
            "base_url": f"{base}/dicom-web",
            "auth_header": "Bearer unused",
        },
    )
    bad = _add(runtime, trial, {"name": "bad", "kind": "dicomweb", "base_url": f"{base}/nothing"})
    result = _test(runtime, good, netns)
    assert result.ok, result.message
    failed = _test(runtime, bad, netns)
    assert failed.outcome == "failed" and "HTTP 404" in failed.message


def _fingerprint(result: Result) -> str:
    match = re.search(r"SHA256:[A-Za-z0-9+/]{43}", result.output)
    assert match, result.output
    return match.group(0)


def test_the_command_line_adds_tests_pins_and_shows(
    cli: Callable[..., Result], sshd: Sshd, tmp_path: Path, netns: NetNamespace, orthanc: Orthanc
) -> None:
    assert (
        cli(
            "trial", "add", "--protocol-id", "CLI-D", "--sponsor", "Acme", "--short-name", "D"
        ).exit_code
        == 0
    )
    added = cli(
        "destination",
        "add",
        "--trial",
        "CLI-D",
        "sponsor",
        "--url",
        f"sftp://root@127.0.0.1:{sshd.port}{tmp_path}",
        "--identity-generate",
        "--marker",
        "COMPLETE",
    )
    assert added.exit_code == 0, added.output
    public = next(line for line in added.output.splitlines() if line.startswith("ssh-ed25519 "))
    authorize(sshd, public)
    first = cli("destination", "test", "--trial", "CLI-D", "sponsor")
    assert first.exit_code == 0 and _fingerprint(first) == sshd.fingerprint
    wrong = cli(
        "destination", "pin", "--trial", "CLI-D", "sponsor", "--fingerprint", "SHA256:" + "A" * 43
    )
    assert wrong.exit_code == 2 and "does not match" in wrong.output
    pinned = cli(
        "destination", "pin", "--trial", "CLI-D", "sponsor", "--fingerprint", sshd.fingerprint
    )
    assert pinned.exit_code == 0, pinned.output
    ok = cli("destination", "test", "--trial", "CLI-D", "sponsor")
    assert ok.exit_code == 0 and ok.output.startswith("ok:"), ok.output
    shown = cli("destination", "show", "--trial", "CLI-D", "sponsor")
    assert public in shown.output and "PRIVATE KEY" not in shown.output
    assert f"{tmp_path}/{{protocol_id}}" in shown.output and sshd.fingerprint in shown.output
    new_host_key(sshd)
    mismatch = cli("destination", "test", "--trial", "CLI-D", "sponsor")
    assert mismatch.exit_code == 3 and "host key mismatch" in mismatch.output
    assert (
        "--calling-aet"
        and cli(
            "destination",
            "add",
            "--trial",
            "CLI-D",
            "pacs",
            "--url",
            orthanc.dicom_url(),
            "--calling-aet",
            "TRIALSHIP",
        ).exit_code
        == 0
    )
    echo = cli("destination", "test", "--trial", "CLI-D", "pacs", ns=netns)
    assert echo.exit_code == 0, echo.output
    listing = cli("destination", "list", "--trial", "CLI-D")
    assert "sponsor" in listing.output and "pacs" in listing.output and "MISMATCH" in listing.output
