"""`trialship disc build|list` and the registry half of `disc burn`: disc sets built from the
trial's imported exams, recorded in the registry (the standalone `media build` records nothing)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from rich.console import Console
from sqlalchemy.orm import Session

from trialship.cli import print_table, progress_bar, trial_option
from trialship.cli.media import MEDIA_CHOICES, POLICY_CHOICES, disc_group
from trialship.cli.runtime import cli_actor, find_trial, unit_of_work
from trialship.errors import TrialshipError
from trialship.labels import list_templates
from trialship.registry.discs import Disc, DiscSet
from trialship.registry.models import JobState
from trialship.services import disc_burns, disc_sets


@disc_group.command("build")
@trial_option
@click.option("--subject", default="", help="Only this subject's exams (subject ID).")
@click.option("--timepoint", default="", help="Only exams of this time point (time point ID).")
@click.option(
    "--exam", "exam_ids", type=int, multiple=True, help="These exams (ids; repeatable) only."
)
@click.option(
    "--all",
    "include_on_disc",
    is_flag=True,
    help="Also exams already on a ready disc (default: only exams on no disc yet).",
)
@click.option(
    "--media",
    type=click.Choice(MEDIA_CHOICES, case_sensitive=False),
    default=None,
    help="Disc type (default: the trial's setting; auto takes the fewest discs, CD first).",
)
@click.option(
    "--per",
    "policy",
    type=click.Choice(POLICY_CHOICES, case_sensitive=False),
    default=None,
    help="pack: fewest discs; subject/timepoint/exam: separate discs per group "
    "(default: the trial's setting).",
)
@click.option(
    "--label-template",
    default=None,
    help=f"Label layout: {', '.join(list_templates())} (default: the trial's setting).",
)
def disc_build(
    protocol_id: str,
    subject: str,
    timepoint: str,
    exam_ids: tuple[int, ...],
    include_on_disc: bool,
    media: str | None,
    policy: str | None,
    label_template: str | None,
) -> None:
    """Build a disc set from the trial's de-identified exams (ISO images and label PDFs in the
    data folder), running the build job here with a progress bar."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        exams = disc_sets.choose_exams(
            session,
            trial,
            exam_ids=exam_ids,
            subject=subject,
            timepoint=timepoint,
            state="" if include_on_disc else disc_sets.NOT_ON_DISC,
        )
        disc_set = disc_sets.create_disc_set(
            session,
            cli_actor(),
            trial,
            exams,
            media=(media or trial.disc_media).lower(),
            policy=(policy or trial.disc_policy).lower(),
            label_template=label_template or trial.label_template,
            today=runtime.today(),
        )
        session.commit()
        assert disc_set.job_id is not None
        _run_build(runtime.settings.data_dir, session, disc_set, disc_set.job_id)


def _run_build(data_dir: Path, session: Session, disc_set: DiscSet, job_id: int) -> None:
    console = Console(stderr=True)
    with progress_bar(console) as progress:
        task = progress.add_task("starting", total=None)
        job = disc_sets.run_build_job(
            session,
            job_id,
            data_dir=data_dir,
            progress=lambda done, total, what: progress.update(
                task, description=what, completed=done, total=total or None
            ),
        )
    session.refresh(disc_set)
    if job.state != JobState.DONE:
        raise TrialshipError(f"disc set {disc_set.id}: {job.message}")
    click.echo(f"Disc set {disc_set.id}: {len(disc_set.exams)} exam(s)")
    for disc in disc_set.discs:
        click.echo(_disc_line(disc, data_dir))
    click.echo(_load_hint(disc_set) + ".")


@disc_group.command("rebuild")
@trial_option
@click.option("--set", "set_id", type=int, required=True, help="The failed disc set (disc list).")
def disc_rebuild(protocol_id: str, set_id: int) -> None:
    """Build a failed disc set again (same exams and options), here with a progress bar."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        disc_set = disc_sets.get_disc_set(session, trial, set_id)
        job = disc_sets.rebuild_disc_set(session, cli_actor(), disc_set, today=runtime.today())
        session.commit()
        _run_build(runtime.settings.data_dir, session, disc_set, job.id)


@disc_group.command("delete")
@trial_option
@click.option("--set", "set_id", type=int, required=True, help="The failed disc set (disc list).")
def disc_delete(protocol_id: str, set_id: int) -> None:
    """Delete a failed disc set (its folder and its row; the job stays in the job list)."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        disc_set = disc_sets.get_disc_set(session, trial, set_id)
        disc_sets.delete_disc_set(
            session,
            cli_actor(),
            disc_set,
            data_dir=runtime.settings.data_dir,
            today=runtime.today(),
        )
        session.commit()
        click.echo(f"Disc set {set_id} deleted.")


def _disc_line(disc: Disc, data_dir: Path) -> str:
    from trialship.media.capacity import Medium

    medium = Medium.from_key(disc.medium)
    fill = 100 * disc.image_bytes / medium.bytes
    return (
        f"disc {disc.id}  {disc.fileset_id}  {medium.label}  {disc.image_bytes / 1e6:.1f} MB "
        f"({fill:.1f} %)  {len(disc.exams)} exam(s)  {data_dir / disc.iso_path}"
    )


def _load_hint(disc_set: DiscSet) -> str:
    from trialship.media.capacity import Medium

    n = len(disc_set.discs)
    label = Medium.from_key(disc_set.discs[0].medium).label if n else "-"
    return f"Load {n} blank {label} disc{'s' if n != 1 else ''}"


@disc_group.command("list")
@trial_option
def disc_list(protocol_id: str) -> None:
    """List the trial's disc sets and discs, with their burns."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        rows = []
        for disc_set in disc_sets.list_disc_sets(session, trial):
            if not disc_set.discs:
                rows.append(
                    {
                        "set": disc_set.id,
                        "disc": "-",
                        "state": disc_set.state.value,
                        "burned": disc_set.message[:60],
                    }
                )
            for disc in disc_set.discs:
                rows.append(
                    {
                        "set": disc_set.id,
                        "disc": disc.id,
                        "fileset_id": disc.fileset_id,
                        "medium": disc.medium,
                        "mb": f"{disc.image_bytes / 1e6:.1f}",
                        "exams": len(disc.exams),
                        "state": disc.state.value,
                        "burned": _burn_text(disc),
                    }
                )
        print_table(rows, ["set", "disc", "fileset_id", "medium", "mb", "exams", "state", "burned"])


def _burn_text(disc: Disc) -> str:
    if disc.burned_at is None:
        return f"no ({disc.burn_message})" if disc.burn_message else "no"
    verified = "verified" if disc.burn_verified else "not verified"
    return f"{disc.burned_at:%Y-%m-%d %H:%M} by {disc.burned_by}, {verified}"


def burn_recorded_disc(protocol_id: str, disc_pk: int, device: str, *, mark: bool) -> None:
    """`disc burn --trial P --disc ID (--device DEV | --mark-burned)`: burn and record.

    The burn is a job like the web's and the API's (same Job row, same drive lock: a drive
    that is busy with another burn refuses this one), run here with a progress bar."""
    with unit_of_work() as (runtime, session):
        trial = find_trial(session, runtime, protocol_id)
        disc = disc_sets.get_disc(session, trial, disc_pk)
        if mark:
            now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
            disc_burns.mark_burned(session, cli_actor(), disc, today=runtime.today(), now=now)
            session.commit()
            click.echo(f"Disc {disc.id} ({disc.fileset_id}) recorded as burned.")
            return
        data_dir = runtime.settings.data_dir
        job = disc_burns.create_burn_job(
            session, cli_actor(), disc, device, data_dir=data_dir, today=runtime.today()
        )
        session.commit()
        console = Console(stderr=True)
        with progress_bar(console) as progress:
            task = progress.add_task("writing", total=1.0)
            disc_burns.run_burn_job(
                session,
                job.id,
                data_dir=data_dir,
                progress=lambda stage, f: progress.update(task, description=stage, completed=f),
            )
        session.refresh(disc)
        if job.state != JobState.DONE:
            raise TrialshipError(
                f"disc {disc.id} not burned on {device} (job {job.id}): {disc.burn_message}"
            )
        click.echo(
            f"Disc {disc.id} ({disc.fileset_id}) burned to {device} (job {job.id}): "
            f"{disc.burn_message}"
        )
