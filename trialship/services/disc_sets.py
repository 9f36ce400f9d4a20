"""Disc sets from imported exams: choose, plan, build (a job), burn or mark burned, download.

The registry knows every file's size and transfer syntax, so a plan needs no file reads. The
build reads the de-identified files' headers (`media_build.read_sources`), checks each file's
SHA-256 against the registry as it copies it onto the disc (a file that changed or vanished
since import stops the build),
and builds each planned disc with `media_build.build_one_disc`, the same code as
`trialship media build`. Images and labels go to `<data>/discs/<trial_id>/<set_id>/`. Discs are
recorded ready only once every disc of the set was built and read back; a failed build leaves
the set failed with the message and no disc.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from trialship.errors import Conflict, NotFound, TrialshipError, ValidationError
from trialship.labels import LabelError, list_templates, load_template, preview_png
from trialship.media.build import EXPLICIT_VR_LE
from trialship.media.capacity import ExamSize, Medium
from trialship.media.convert import CONVERTIBLE
from trialship.media.errors import SourceChangedError
from trialship.media.planning import DiscPlan, Policy
from trialship.registry.discs import Disc, DiscSet, DiscSetState, DiscState
from trialship.registry.imaging import Instance
from trialship.registry.models import Exam, ExamState, Job, JobState, Subject, Trial, User
from trialship.services import audit, disc_images
from trialship.services import media_build as mb
from trialship.services.authz import Actor, Capability, require
from trialship.services.disc_images import Report
from trialship.services.exams import exam_instances
from trialship.services.fields import get_in_trial
from trialship.services.jobs import ProgressWriter, create_job, finish_job, start_job

KIND = "disc_build"
DISCS_DIR = "discs"
MEDIA_CHOICES = ("auto", *(m.key for m in Medium))
POLICY_CHOICES = tuple(p.value for p in Policy)
NOT_ON_DISC = "not_on_disc"
"""A state filter: de-identified exams on no ready disc yet."""


@dataclass(frozen=True)
class PlannedDiscView:
    index: int
    medium: Medium
    exam_ids: tuple[int, ...]
    payload_bytes: int
    estimated_bytes: int

    @property
    def fill_percent(self) -> float:
        return round(100 * self.estimated_bytes / self.medium.bytes, 2)


@dataclass(frozen=True)
class SetPlan:
    """What a build would make: the discs (estimated), the medium, what to load."""

    medium: Medium
    discs: tuple[PlannedDiscView, ...]
    exam_ids: tuple[int, ...]

    @property
    def load_hint(self) -> str:
        n = len(self.discs)
        return f"Load {n} blank {self.medium.label} disc{'s' if n != 1 else ''}"


# -- choosing exams ---------------------------------------------------------------------------


def blocked_reason(exam: Exam) -> str | None:
    """Why an exam cannot go on a disc, or None."""
    if exam.state != ExamState.DEIDENTIFIED:
        return f"not de-identified ({exam.state.value})"
    if exam.needs_pixel_review and exam.pixel_reviewed_at is None:
        return "pixel review pending"
    if exam.file_count == 0:
        return "no files"
    return None


def candidate_exams(
    session: Session, trial: Trial, *, subject: str = "", timepoint: str = "", state: str = ""
) -> list[Exam]:
    """The trial's exams matching the filters (subject code, time point code, exam state or
    `not_on_disc`), by subject and date; blocked ones included so a page can say why."""
    query = (
        select(Exam)
        .join(Subject, Subject.id == Exam.subject_pk)
        .where(Exam.trial_id == trial.id)
        .options(selectinload(Exam.subject), selectinload(Exam.timepoint))
        .order_by(Subject.subject_id, Exam.study_date, Exam.id)
    )
    if subject:
        query = query.where(Subject.subject_id == subject)
    exams = list(session.scalars(query))
    if timepoint:
        exams = [e for e in exams if e.timepoint and e.timepoint.timepoint_id == timepoint]
    if state == NOT_ON_DISC:
        on_disc = set(
            session.scalars(
                select(Exam.id)
                .join(Disc.exams)
                .join(DiscSet, DiscSet.id == Disc.disc_set_pk)
                .where(DiscSet.trial_id == trial.id, Disc.state == DiscState.READY)
            )
        )
        exams = [e for e in exams if e.id not in on_disc and blocked_reason(e) is None]
    elif state:
        exams = [e for e in exams if e.state.value == state]
    return exams


def choose_exams(
    session: Session,
    trial: Trial,
    *,
    exam_ids: Sequence[int] = (),
    subject: str = "",
    timepoint: str = "",
    state: str = "",
) -> list[Exam]:
    """The exams of a set: the given ids, or every eligible exam matching the filters.

    Raises ValidationError for an unknown or blocked exam, or when nothing is chosen."""
    if exam_ids:
        exams = []
        for exam_id in dict.fromkeys(exam_ids):
            exam = session.get(Exam, exam_id)
            if exam is None or exam.trial_id != trial.id:
                raise ValidationError(f"no exam {exam_id} in this trial", field="exam_ids")
            reason = blocked_reason(exam)
            if reason:
                raise ValidationError(f"exam {exam_id}: {reason}", field="exam_ids")
            exams.append(exam)
        return exams
    found = candidate_exams(session, trial, subject=subject, timepoint=timepoint, state=state)
    exams = [e for e in found if blocked_reason(e) is None]
    if not exams:
        raise ValidationError(
            "no de-identified exam (with its pixel review done) matches the choice",
            field="exam_ids",
        )
    return exams


# -- planning --------------------------------------------------------------------------------


def _check_choice(media: str, policy: str) -> None:
    if media not in MEDIA_CHOICES:
        raise ValidationError(f"choose one of {', '.join(MEDIA_CHOICES)}", field="media")
    if policy not in POLICY_CHOICES:
        raise ValidationError(f"choose one of {', '.join(POLICY_CHOICES)}", field="policy")


def _plan(session: Session, exams: Sequence[Exam], media: str, policy: str) -> DiscPlan:
    _check_choice(media, policy)
    if not exams:
        raise ValidationError("choose at least one exam", field="exam_ids")
    sizes: list[ExamSize] = []
    compressed: list[tuple[str, str]] = []
    for exam in exams:
        instances = exam_instances(session, exam)
        if not instances:
            raise ValidationError(f"exam {exam.id} has no files", field="exam_ids")
        sizes.append(
            ExamSize(
                exam_key=str(exam.id),
                bytes_per_file=tuple(i.size for i in instances),
                subject=exam.subject.subject_id,
                timepoint=exam.timepoint.timepoint_id if exam.timepoint else "",
                series_count=len({i.series_pk for i in instances}),
            )
        )
        compressed += [
            (f"exam {exam.id}", i.transfer_syntax_uid)
            for i in instances
            if i.transfer_syntax_uid != EXPLICIT_VR_LE and i.transfer_syntax_uid not in CONVERTIBLE
        ]
    return mb.plan_sizes(sizes, media, policy, compressed=compressed)


def plan_disc_set(
    session: Session,
    actor: Actor,
    trial: Trial,
    exams: Sequence[Exam],
    *,
    media: str,
    policy: str,
    today: dt.date,
) -> SetPlan:
    """The discs a build would make, without writing anything."""
    require(session, actor, trial, Capability.MEDIA, today)
    return _view(_plan(session, exams, media, policy))


def _view(plan: DiscPlan) -> SetPlan:
    discs = tuple(
        PlannedDiscView(
            index=d.index,
            medium=d.medium,
            exam_ids=tuple(int(e.exam_key) for e in d.exams),
            payload_bytes=sum(e.total_bytes for e in d.exams),
            estimated_bytes=d.sectors_used * 2048,
        )
        for d in plan.discs
    )
    return SetPlan(plan.medium, discs, tuple(i for d in discs for i in d.exam_ids))


# -- creating and building -------------------------------------------------------------------


def create_disc_set(
    session: Session,
    actor: Actor,
    trial: Trial,
    exams: Sequence[Exam],
    *,
    media: str = "auto",
    policy: str = "pack",
    label_template: str = "cd_face",
    today: dt.date,
) -> DiscSet:
    """Record a set and its queued build job (the caller enqueues it after commit)."""
    require(session, actor, trial, Capability.MEDIA, today)
    if label_template not in list_templates():
        raise ValidationError(
            f"choose one of {', '.join(list_templates())}", field="label_template"
        )
    _plan(session, exams, media, policy)  # refuse now what the build would refuse
    disc_set = DiscSet(
        trial_id=trial.id,
        created_by=actor.user_id,
        created_by_label=actor.label,
        medium=media,
        policy=policy,
        label_template=label_template,
        exams=list(exams),
    )
    session.add(disc_set)
    session.flush()
    job = create_job(
        session,
        kind=KIND,
        target=f"disc_set:{disc_set.id}",
        trial_id=trial.id,
        user_id=actor.user_id,
    )
    disc_set.job_id = job.id
    audit.record(
        session,
        actor,
        "disc_set.create",
        object_type="disc_set",
        object_id=disc_set.id,
        trial_id=trial.id,
        details={"exams": len(exams), "media": media, "policy": policy, "job": job.id},
    )
    return disc_set


def set_folder(data_dir: Path, disc_set: DiscSet) -> Path:
    return Path(data_dir) / DISCS_DIR / str(disc_set.trial_id) / str(disc_set.id)


def run_build_job(
    session: Session, job_id: int, *, data_dir: Path, progress: Report | None = None
) -> Job:
    """Build (or rebuild) the set of the job; the job and the set end done/ready or failed."""
    job = session.get(Job, job_id)
    if job is None or job.kind != KIND:
        raise NotFound(f"no disc build job {job_id}")
    if job.state in (JobState.DONE, JobState.CANCELLED):
        return job  # idempotent: a re-delivered task changes nothing
    disc_set = session.scalar(select(DiscSet).where(DiscSet.job_id == job.id))
    if disc_set is None:
        raise NotFound(f"job {job_id} has no disc set")
    disc_set.state, disc_set.message = DiscSetState.BUILDING, ""
    for old in list(disc_set.discs):
        session.delete(old)
    start_job(session, job, message="reading headers")
    writer = ProgressWriter(session, job)

    def report(done: int, total: int, message: str) -> None:
        writer(done, total, message)
        if progress is not None:
            progress(done, total, message)

    folder = set_folder(data_dir, disc_set)
    try:
        discs = _build(session, disc_set, Path(data_dir), folder, report)
    except (TrialshipError, OSError, ValueError) as exc:
        session.rollback()
        shutil.rmtree(folder, ignore_errors=True)
        message = f"disc build failed: {exc}"
        disc_set.state, disc_set.message = DiscSetState.FAILED, message
        for old in list(disc_set.discs):
            session.delete(old)
        finish_job(session, job, ok=False, message=message)
        return job
    disc_set.discs = discs
    disc_set.state = DiscSetState.READY
    count = len(discs)
    disc_set.message = f"{count} {discs[0].medium} disc{'s' if count != 1 else ''} ready"
    finish_job(session, job, ok=True, message=disc_set.message)
    return job


def _build(
    session: Session, disc_set: DiscSet, data_dir: Path, folder: Path, report: Report
) -> list[Disc]:
    exams = list(disc_set.exams)
    for exam in exams:
        reason = blocked_reason(exam)
        if reason:
            raise ValidationError(f"exam {exam.id}: {reason}")
    plan = _plan(session, exams, disc_set.medium, disc_set.policy)
    template = load_template(disc_set.label_template)
    trial = disc_set.trial
    shutil.rmtree(folder, ignore_errors=True)  # an earlier, failed attempt
    folder.mkdir(parents=True)
    suffix = f"_{disc_set.id}"
    order = disc_images.ImageOrder(
        discs=plan.discs,
        exams=tuple(_exam_files(session, exam, data_dir) for exam in exams),
        folder=folder,
        prefix=mb.disc_id_prefix(trial.protocol_id)[: 11 - len(suffix)] + suffix,
        template=template,
        # The set's creation time dates its images: a rebuild gives the same bytes.
        timestamp=disc_set.created_at.replace(tzinfo=dt.UTC).timestamp(),
    )
    try:
        built = disc_images.build_images(order, report)
    except SourceChangedError as exc:
        raise _changed_file(session, exams, data_dir, exc.path) from exc
    by_id = {str(exam.id): exam for exam in exams}
    return [
        Disc(
            index=image.index,
            medium=image.medium.key,
            fileset_id=image.disc_id,
            iso_path=image.iso.relative_to(data_dir).as_posix(),
            label_path=image.label.relative_to(data_dir).as_posix(),
            image_bytes=image.image_bytes,
            sha256=image.sha256,
            manifest_sha256=image.manifest_sha256,
            state=DiscState.READY,
            exams=[by_id[key] for key in image.exam_keys],
        )
        for image in built
    ]


def _exam_files(session: Session, exam: Exam, data_dir: Path) -> disc_images.ExamFiles:
    """The exam's files as the disc builder gets them. Every file must still be there with its
    imported size; its SHA-256 is checked against the registry's as it is copied onto the
    disc (one read), or here for the rare file that is rewritten as Explicit VR Little Endian
    first."""
    instances = exam_instances(session, exam)
    for instance in instances:
        try:
            size = (data_dir / instance.path).stat().st_size
        except FileNotFoundError:
            raise TrialshipError(
                f"exam {exam.id}: file {instance.path} is missing from the data folder"
            ) from None
        if size != instance.size or (
            instance.transfer_syntax_uid in CONVERTIBLE
            and _sha256(data_dir / instance.path) != instance.output_sha256
        ):
            raise _changed(exam, instance)
    return disc_images.ExamFiles(
        key=str(exam.id),
        subject=exam.subject.subject_id,
        timepoint=exam.timepoint.timepoint_id if exam.timepoint else "",
        date=exam.study_date.isoformat() if exam.study_date else "",
        modality=exam.modality,
        description=exam.description,
        site=exam.subject.site.site_id if exam.subject.site else "",
        paths=tuple(str(data_dir / i.path) for i in instances),
        sha256s=tuple(i.output_sha256 for i in instances),
    )


def _changed_file(
    session: Session, exams: Sequence[Exam], data_dir: Path, path: str
) -> TrialshipError:
    for exam in exams:
        for instance in exam_instances(session, exam):
            if str(data_dir / instance.path) == path:
                return _changed(exam, instance)
    return TrialshipError(f"{path} changed since it was imported")


def _changed(exam: Exam, instance: Instance) -> TrialshipError:
    return TrialshipError(
        f"exam {exam.id}: file {instance.path} changed since it was imported "
        "(its SHA-256 differs from the registry's)"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- reading ---------------------------------------------------------------------------------


def list_disc_sets(session: Session, trial: Trial) -> list[DiscSet]:
    return list(
        session.scalars(
            select(DiscSet)
            .where(DiscSet.trial_id == trial.id)
            .options(selectinload(DiscSet.discs).selectinload(Disc.exams))
            .order_by(DiscSet.id.desc())
        )
    )


def get_disc_set(session: Session, trial: Trial, set_id: int) -> DiscSet:
    return get_in_trial(session, DiscSet, trial, set_id, "disc set")


def get_disc(session: Session, trial: Trial, disc_pk: int) -> Disc:
    disc = session.get(Disc, disc_pk)
    if disc is None or disc.disc_set.trial_id != trial.id:
        raise NotFound(f"no disc {disc_pk} in this trial")
    return disc


def disc_file(data_dir: Path, disc: Disc, kind: str) -> Path:
    """The disc's image (`iso`) or label PDF (`label`); NotFound unless the disc is ready."""
    relative = {"iso": disc.iso_path, "label": disc.label_path}.get(kind)
    if relative is None:
        raise NotFound(f"no {kind} file")
    path = Path(data_dir) / relative
    if disc.state != DiscState.READY or not relative or not path.is_file():
        raise NotFound(f"disc {disc.id} has no {kind} file")
    return path


def label_preview(data_dir: Path, disc: Disc, *, dpi: int = 60) -> bytes:
    try:
        return preview_png(disc_file(data_dir, disc, "label").read_bytes(), dpi=dpi)
    except LabelError as exc:
        raise TrialshipError(str(exc)) from exc


# -- a failed set: build it again, or delete it --------------------------------------------


def rebuild_disc_set(session: Session, actor: Actor, disc_set: DiscSet, *, today: dt.date) -> Job:
    """Queue the failed set's build job again (the caller enqueues it after commit); the build
    starts the set over with the same exams and options."""
    require(session, actor, disc_set.trial, Capability.MEDIA, today)
    if disc_set.state != DiscSetState.FAILED:
        raise Conflict(
            f"disc set {disc_set.id} is {disc_set.state.value}: only a failed set is rebuilt"
        )
    job = session.get(Job, disc_set.job_id) if disc_set.job_id else None
    if job is None:
        job = create_job(
            session,
            kind=KIND,
            target=f"disc_set:{disc_set.id}",
            trial_id=disc_set.trial_id,
            user_id=actor.user_id,
        )
        disc_set.job_id = job.id
    job.state, job.finished_at, job.done, job.message = JobState.QUEUED, None, 0, "queued again"
    disc_set.state, disc_set.message = DiscSetState.PLANNED, "rebuild queued"
    audit.record(
        session,
        actor,
        "disc_set.rebuild",
        object_type="disc_set",
        object_id=disc_set.id,
        trial_id=disc_set.trial_id,
        details={"job": job.id},
    )
    return job


def delete_disc_set(
    session: Session, actor: Actor, disc_set: DiscSet, *, data_dir: Path, today: dt.date
) -> None:
    """Remove a failed set: its row (its build job stays in the job list) and its folder."""
    require(session, actor, disc_set.trial, Capability.MEDIA, today)
    if disc_set.state != DiscSetState.FAILED:
        raise Conflict(
            f"disc set {disc_set.id} is {disc_set.state.value}: only a failed set is deleted"
        )
    shutil.rmtree(set_folder(data_dir, disc_set), ignore_errors=True)
    audit.record(
        session,
        actor,
        "disc_set.delete",
        object_type="disc_set",
        object_id=disc_set.id,
        trial_id=disc_set.trial_id,
        details={"exams": len(disc_set.exams), "message": disc_set.message[:300]},
    )
    session.delete(disc_set)


def creator_label(disc_set: DiscSet) -> str:
    user: User | None = disc_set.creator
    return user.email if user else disc_set.created_by_label
