"""`trialship media build` (folders of de-identified files -> disc images and labels) and
`trialship disc burn` (an image onto a disc, read back and compared).

Both are standalone: no database. The registry's `disc build` records its discs elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from trialship.cli import main
from trialship.errors import TrialshipError
from trialship.labels import list_templates
from trialship.media.burn import BurnError, burn_iso
from trialship.media.capacity import Medium
from trialship.media.planning import Policy
from trialship.services.media_build import build_media

MEDIA_CHOICES = ["auto", *(m.key for m in Medium)]
POLICY_CHOICES = [p.value for p in Policy]


class _Bar:
    """One rich task whose description follows the stage the service reports."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID = progress.add_task("starting", total=None)

    def __call__(self, what: str, done: int, total: int) -> None:
        self.progress.update(self.task, description=what, completed=done, total=total)


@main.group("media")
def media_group() -> None:
    """Disc images from folders of de-identified DICOM files (no database needed)."""


@media_group.command("build")
@click.argument("sources", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for DISC001.iso, DISC001-label.pdf, ... and discs.json.",
)
@click.option(
    "--media",
    type=click.Choice(MEDIA_CHOICES, case_sensitive=False),
    default="auto",
    show_default=True,
    help="Disc type; auto takes the one needing the fewest discs (CD first on a tie).",
)
@click.option(
    "--per",
    "policy",
    type=click.Choice(POLICY_CHOICES, case_sensitive=False),
    default="pack",
    show_default=True,
    help="pack: fewest discs; subject/timepoint/exam: separate discs per group.",
)
@click.option(
    "--label-template",
    default="cd_face",
    show_default=True,
    help=f"Label layout: {', '.join(list_templates())}, or a path to a template TOML.",
)
@click.option(
    "--allow-identified",
    is_flag=True,
    help="Accept files without PatientIdentityRemoved YES (research data under approval).",
)
@click.option(
    "--fileset-prefix",
    metavar="TEXT",
    help="Volume/File-set ID prefix (default: the ClinicalTrialProtocolID); e.g. ACM301_D001.",
)
@click.option(
    "--type1",
    is_flag=True,
    help="Also write the HIRO Type 1 tree (subject/date_uid_description/series/NNNNN.dcm) "
    "in OUT/TYPE1.",
)
@click.option("--zip", "zips", is_flag=True, help="Also write the Type 1 tree as zips in OUT/ZIP.")
@click.option(
    "--zip-limit",
    metavar="SIZE",
    callback=lambda ctx, param, value: parse_size(value),
    help="Split the zips at SIZE bytes (suffixes K, M, G: 650M, 4G); implies --zip.",
)
def media_build(
    sources: tuple[Path, ...],
    out_dir: Path,
    media: str,
    policy: str,
    label_template: str,
    allow_identified: bool,
    fileset_prefix: str | None,
    type1: bool,
    zips: bool,
    zip_limit: int | None,
) -> None:
    """Build ISO images with a DICOMDIR, and their labels, from de-identified DICOM files."""
    if not sources:
        raise click.UsageError("give at least one folder or file of DICOM files")
    console = Console(stderr=True)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    ) as progress:
        result = build_media(
            list(sources),
            out_dir,
            media=media.lower(),
            policy=policy.lower(),
            label_template=label_template,
            allow_identified=allow_identified,
            fileset_prefix=fileset_prefix,
            type1=type1,
            zips=zips,
            zip_limit=zip_limit,
            progress=_Bar(progress),
        )
    if result.skipped:
        click.echo(f"Skipped {len(result.skipped)} file(s) that are not DICOM.", err=True)
    if result.converted:
        click.echo(f"Rewrote {result.converted} file(s) as Explicit VR Little Endian.")
    for disc in result.discs:
        exams = len(disc.exams)
        fill = 100 * disc.image_bytes / disc.medium.bytes
        click.echo(
            f"{disc.iso.name}  {disc.disc_id}  {disc.medium.label}  "
            f"{disc.image_bytes / 1e6:.1f} MB ({fill:.1f} %)  {exams} exam(s)  "
            f"label {disc.label.name}"
        )
    if result.type1_tree:
        click.echo(f"Type 1 tree in {result.type1_tree}")
    for archive in result.zips:
        click.echo(f"{archive.path.name}  {archive.bytes / 1e6:.1f} MB  {archive.files} file(s)")
    click.echo(f"Wrote {result.index}")
    click.echo(f"{result.load_hint}.")


_SIZE = re.compile(r"(\d+)\s*([KMG]?)B?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3}


def parse_size(value: str | None) -> int | None:
    """ "650M" -> 650000000 (decimal units, as disc and upload limits are given)."""
    if value is None:
        return None
    match = _SIZE.fullmatch(value.strip())
    if match is None or int(match.group(1)) == 0:
        raise click.BadParameter(f"{value!r} is not a size such as 650M or 4G")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


@main.group("disc")
def disc_group() -> None:
    """Disc sets from the trial's exams (build, list) and burning."""


@disc_group.command("burn")
@click.argument("iso", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--device",
    metavar="DEV",
    help="The burner (/dev/sr0), or stdio:PATH for libburn's pseudo drive (a file).",
)
@click.option("--no-verify", is_flag=True, help="Skip reading the disc back (ISO only).")
@click.option("--trial", "protocol_id", metavar="PROTOCOL_ID", help="A recorded disc's trial.")
@click.option("--disc", "disc_pk", type=int, metavar="ID", help="A recorded disc (disc list).")
@click.option(
    "--mark-burned", is_flag=True, help="Record the disc (--trial, --disc) as burned elsewhere."
)
def disc_burn(
    iso: Path | None,
    device: str | None,
    no_verify: bool,
    protocol_id: str | None,
    disc_pk: int | None,
    mark_burned: bool,
) -> None:
    """Burn ISO with xorriso, then read the disc back and compare its SHA-256.

    With --trial and --disc instead of ISO, burn a disc of a disc set and record the burn
    (when, by whom, verified, or xorriso's message) in the registry.
    """
    if protocol_id or disc_pk:
        if iso is not None or not (protocol_id and disc_pk):
            raise click.UsageError("give either ISO, or --trial and --disc")
        if not mark_burned and not device:
            raise click.UsageError("give --device DEV, or --mark-burned")
        from trialship.cli.discs import burn_recorded_disc

        burn_recorded_disc(protocol_id, disc_pk, device or "", mark=mark_burned)
        return
    if iso is None or not device:
        raise click.UsageError("give ISO and --device DEV (or --trial and --disc)")
    console = Console(stderr=True)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    ) as progress:
        task = progress.add_task("writing", total=1.0)
        try:
            result = burn_iso(
                iso,
                device,
                verify=not no_verify,
                progress=lambda stage, f: progress.update(task, description=stage, completed=f),
            )
        except BurnError as exc:
            raise TrialshipError(" ".join(exc.message.split())) from exc
    if not result.ok:
        raise TrialshipError(f"{iso.name} on {device}: {result.message}")
    click.echo(f"{iso.name} burned to {device}: {result.message}")
    click.echo(f"SHA-256 {result.image_sha256}")
