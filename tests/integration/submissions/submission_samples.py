"""An imported exam, an SFTP destination to a real sshd with its host key pinned, and the
steps of a submission, for the submission tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from tests.integration.destinations.conftest import authorize
from tests.integration.exams.exam_samples import SYSTEM, write_exam
from tests.integration.transfer.peers import NetNamespace, Sshd
from trialship.app import Runtime
from trialship.registry.delivery import Destination
from trialship.registry.models import Exam, Trial
from trialship.registry.submissions import Submission
from trialship.services import automation, destinations, submissions
from trialship.services.exam_import import import_exams
from trialship.services.submission_run import run_submission
from trialship.signing import load_or_create_signing_key

NOW = dt.datetime(2024, 2, 1, 12, 0)
TEMPLATE = "{protocol_id}/{site_id}/{subject_id}/{timepoint_id}/"


def import_exam(runtime: Runtime, trial: Trial, folder: Path, **kwargs: Any) -> int:
    write_exam(folder, 3, **kwargs)
    data = runtime.settings.data_dir
    with runtime.db.unit_of_work() as session:
        summary = import_exams(
            session,
            SYSTEM,
            runtime.vault,
            session.merge(trial),
            [folder],
            data_dir=data,
            signing_key=load_or_create_signing_key(data),
            today=runtime.today(),
            now=NOW,
            subject_id="SUBJ-001",
            timepoint_id="BL",
        )
        assert not summary.quarantined, summary.line()
        return session.query(Exam).order_by(Exam.id.desc()).first().id  # type: ignore[union-attr]


def sftp_destination(runtime: Runtime, trial: Trial, sshd: Sshd, remote: Path) -> int:
    with runtime.db.unit_of_work() as session:
        dest = destinations.add_destination(
            session,
            SYSTEM,
            runtime.vault,
            session.merge(trial),
            {
                "name": "sponsor",
                "kind": "sftp",
                "host": "127.0.0.1",
                "port": sshd.port,
                "username": "root",
                "generate_key": True,
                "remote_path": f"{remote}/{TEMPLATE}",
                "marker": "COMPLETE",
            },
            runtime.today(),
        )
        authorize(sshd, dest.public_key)
        destinations.check_connection(session, SYSTEM, runtime.vault, dest, runtime.today())
        destinations.pin_host_key(session, SYSTEM, dest, sshd.fingerprint, runtime.today())
        return dest.id


def submit(
    runtime: Runtime, trial: Trial, dest_pk: int, value: int | str, *, scope: str = "exam"
) -> int:
    """A queued submission of `value` (an exam id, or a time point, subject or disc set)."""
    with runtime.db.unit_of_work() as session:
        dest = session.get(Destination, dest_pk)
        assert dest is not None
        found = submissions.create_submission(
            session,
            SYSTEM,
            session.merge(trial),
            dest,
            scope=scope,
            value=str(value),
            today=runtime.today(),
        )
        return found.id


def run(runtime: Runtime, pk: int, ns: NetNamespace | None = None, **kwargs: Any) -> Submission:
    data = runtime.settings.data_dir

    def go() -> Submission:
        with runtime.db.unit_of_work() as session:
            result = run_submission(
                session,
                runtime.vault,
                pk,
                data_dir=data,
                signing_key=load_or_create_signing_key(data),
                **kwargs,
            )
            assert result is not None
            session.expunge_all()
            return result

    return ns.call(go) if ns is not None else go()


def load(runtime: Runtime, pk: int) -> Submission:
    with runtime.db.unit_of_work() as session:
        found = session.get(Submission, pk)
        assert found is not None
        _ = (found.files, found.job)
        session.expunge_all()
        return found


def add_destination(runtime: Runtime, trial: Trial, fields: dict[str, Any]) -> int:
    with runtime.db.unit_of_work() as session:
        return destinations.add_destination(
            session, SYSTEM, runtime.vault, session.merge(trial), fields, runtime.today()
        ).id


def add_rule(
    runtime: Runtime, trial: Trial, dest_pk: int, *, mode: str = "on_ready", daily_at: str = ""
) -> None:
    """A rule for every time point of the trial."""
    with runtime.db.unit_of_work() as session:
        dest = session.get(Destination, dest_pk)
        assert dest is not None
        automation.add_rule(
            session,
            SYSTEM,
            session.merge(trial),
            dest,
            timepoint_pk=None,
            mode=mode,
            daily_at=daily_at,
            today=runtime.today(),
        )
