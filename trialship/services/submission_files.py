"""The files of a submission: which local files go where, in which group, for each package form.

A group is what one sender call handles: for SFTP one remote folder (an exam's folder in the
remote path template, with its own SHA256SUMS and completion marker), for DICOM and DICOMweb
the whole submission. Remote names carry no PHI: they come from the trial's codes and the
de-identified layout (`S0001/I00001.dcm`).

Forms: `tree` (the de-identified files), `zip` (one stored zip per exam, built under
`<data>/submissions/<id>/packages/`), `iso` (a ready disc set's images), `dicom` (instances).
"""

from __future__ import annotations

import posixpath
import shutil
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.orm import Session

from trialship.errors import Conflict
from trialship.media.type1 import TreeFile, safe_name, write_zips
from trialship.registry.discs import DiscSet, DiscState
from trialship.registry.imaging import Instance
from trialship.registry.models import Exam
from trialship.registry.submissions import Submission, SubmissionFile
from trialship.services.exam_import import EXAMS_DIR
from trialship.services.exams import exam_instances
from trialship.transfer.guard import check_package
from trialship.transfer.package import Package, PackageFile, read_header, sha256_file

SUBMISSIONS_DIR = "submissions"


def submission_folder(data_dir: Path, submission: Submission) -> Path:
    return Path(data_dir) / SUBMISSIONS_DIR / str(submission.trial_id) / str(submission.id)


def render_folder(template: str, values: dict[str, str]) -> str:
    """The remote folder of `template` for these codes, without a trailing "/"."""
    safe = {key: safe_name(value) or "NA" for key, value in values.items()}
    return template.format(**safe).rstrip("/") or "."


def exam_codes(exam: Exam) -> dict[str, str]:
    subject = exam.subject
    return {
        "protocol_id": subject.trial.protocol_id,
        "site_id": subject.site.site_id if subject.site else "",
        "subject_id": subject.subject_id,
        "timepoint_id": exam.timepoint.timepoint_id if exam.timepoint else "",
    }


def exam_folder_name(exam: Exam) -> str:
    return f"{safe_name(exam.modality) or 'OT'}_{exam.id:06d}"


def _under_exam(exam: Exam, path: str) -> str:
    return path.removeprefix(f"{EXAMS_DIR}/{exam.trial_id}/{exam.id}/")


def guarded_package(data_dir: Path, rows: Iterable[tuple[str, str, int, str]]) -> Package:
    """A package of (local path, remote, size, sha256) rows, each file's header read for the
    guard. A file that is gone, or whose content is not what was recorded when it passed the
    leak check (its SHA-256), stops the submission before anything is sent."""
    files = []
    for local, remote, size, sha256 in rows:
        path = Path(data_dir) / local
        try:
            actual, length = sha256_file(path)
        except FileNotFoundError:
            raise Conflict(f"{local} is gone from the data folder: import the exam again") from None
        if (actual, length) != (sha256, size):
            raise Conflict(f"{local} changed since it was recorded (its SHA-256 differs)")
        files.append(PackageFile(path, remote, size, sha256, read_header(path)))
    return Package(tuple(files))


def plan_files(
    session: Session, submission: Submission, data_dir: Path, template: str
) -> list[SubmissionFile]:
    """Create the submission's file rows (once: a resumed run finds them)."""
    exams = [e for pk in submission.exam_pks if (e := session.get(Exam, pk)) is not None]
    if len(exams) != len(submission.exam_pks):
        raise Conflict("an exam of this submission was deleted")
    form = submission.package_form
    rows: list[SubmissionFile] = []
    if form == "iso":
        rows = _iso_rows(session, submission, template)
    for exam in exams if form != "iso" else []:
        instances = exam_instances(session, exam)
        if form == "dicom":
            group = ""
            rows += [
                _row(exam, group, i.path, f"{exam.id}/{_under_exam(exam, i.path)}", i)
                for i in instances
            ]
            continue
        group = posixpath.join(render_folder(template, exam_codes(exam)), exam_folder_name(exam))
        if form == "tree":
            rows += [_row(exam, group, i.path, _under_exam(exam, i.path), i) for i in instances]
        else:
            rows.append(_zip_row(submission, data_dir, exam, group, instances))
    for row in rows:
        row.submission_pk = submission.id
        session.add(row)
    submission.files_total = len(rows)
    submission.bytes_total = sum(r.size for r in rows)
    return rows


def _row(exam: Exam, group: str, path: str, remote: str, instance: Instance) -> SubmissionFile:
    return SubmissionFile(
        exam_pk=exam.id,
        group=group,
        path=path,
        remote=remote,
        size=instance.size,
        sha256=instance.output_sha256,
    )


def _zip_row(
    submission: Submission, data_dir: Path, exam: Exam, group: str, instances: list[Instance]
) -> SubmissionFile:
    # The members pass the guard before they are zipped: the zip itself is not DICOM.
    check_package(
        guarded_package(
            data_dir,
            ((i.path, _under_exam(exam, i.path), i.size, i.output_sha256) for i in instances),
        )
    )
    folder = submission_folder(data_dir, submission) / "packages" / str(exam.id)
    shutil.rmtree(folder, ignore_errors=True)  # a half-built zip of a killed run
    members = [
        TreeFile(_under_exam(exam, i.path), Path(data_dir) / i.path, i.size) for i in instances
    ]
    (written,) = write_zips(members, folder, stem=exam_folder_name(exam))
    return SubmissionFile(
        exam_pk=exam.id,
        group=group,
        path=written.path.relative_to(data_dir).as_posix(),
        remote=written.path.name,
        size=written.bytes,
        sha256=written.sha256,
    )


def _iso_rows(session: Session, submission: Submission, template: str) -> list[SubmissionFile]:
    disc_set = session.get(DiscSet, submission.disc_set_pk) if submission.disc_set_pk else None
    if disc_set is None:
        raise Conflict("the disc set of this submission was deleted")
    discs = [d for d in disc_set.discs if d.state == DiscState.READY]
    if not discs:
        raise Conflict(f"disc set {disc_set.id} has no ready disc")
    fixed = template.split("{", 1)[0].rstrip("/")
    group = (
        posixpath.join(fixed, f"DISCSET_{disc_set.id:05d}")
        if fixed
        else f"DISCSET_{disc_set.id:05d}"
    )
    return [
        SubmissionFile(
            group=group,
            path=disc.iso_path,
            remote=Path(disc.iso_path).name,
            size=disc.image_bytes,
            sha256=disc.sha256,
        )
        for disc in discs
    ]
