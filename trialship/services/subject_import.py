"""Bulk import of subjects from CSV: a preview with row-level errors, then all or nothing.

The preview is a dry run of the commit (each row through `add_subject` in a savepoint, all
rolled back), so the two can never disagree about what is valid.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from trialship.crypto import Vault
from trialship.errors import TrialshipError, ValidationError
from trialship.registry.models import Trial
from trialship.services import audit
from trialship.services.authz import Actor, Capability, require
from trialship.services.subjects import SUBJECT_FIELDS, add_subject

COLUMNS = list(SUBJECT_FIELDS)
REQUIRED = ["subject_id"]


@dataclass
class RowResult:
    line: int
    values: dict[str, str]
    errors: list[str] = field(default_factory=list)


@dataclass
class ImportResult:
    rows: list[RowResult]
    committed: bool = False

    @property
    def error_rows(self) -> list[RowResult]:
        return [row for row in self.rows if row.errors]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.error_rows


def read_csv(data: bytes, *, max_bytes: int, max_rows: int) -> list[RowResult]:
    """Decode and split the file; errors about the file as a whole raise ValidationError."""
    if len(data) > max_bytes:
        raise ValidationError(
            f"is {len(data):,} bytes; at most {max_bytes:,} are accepted", field="file"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}): "
            "save it as 'CSV UTF-8'",
            field="file",
        ) from None
    first_line = text.split("\n", 1)[0]
    delimiter = max([",", ";", "\t"], key=first_line.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise ValidationError("is empty", field="file") from None
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in REQUIRED if c not in header]
    if unknown or missing or len(set(header)) != len(header):
        raise ValidationError(
            "has wrong columns"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + ("; a column is repeated" if len(set(header)) != len(header) else "")
            + f". Expected columns: {', '.join(COLUMNS)}",
            field="file",
        )
    rows: list[RowResult] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(rows) >= max_rows:
                raise ValidationError(f"has more than {max_rows:,} rows; split it", field="file")
            row = RowResult(reader.line_num, dict(zip(header, cells, strict=False)))
            if len(cells) != len(header):
                row.errors.append(f"has {len(cells)} cells, the header has {len(header)}")
            rows.append(row)
    except csv.Error as exc:
        raise ValidationError(f"line {reader.line_num}: {exc}", field="file") from None
    if not rows:
        raise ValidationError("has a header but no rows", field="file")
    return rows


def import_subjects(
    session: Session,
    actor: Actor,
    vault: Vault,
    trial: Trial,
    data: bytes,
    *,
    today: dt.date,
    commit: bool,
    max_bytes: int,
    max_rows: int,
) -> ImportResult:
    """Validate every row; with `commit`, save them all (only if every row is valid)."""
    require(session, actor, trial, Capability.REGISTRY, today)
    result = ImportResult(read_csv(data, max_bytes=max_bytes, max_rows=max_rows))
    outer = session.begin_nested()
    for row in result.rows:
        if row.errors:
            continue
        inner = session.begin_nested()
        try:
            add_subject(session, actor, vault, trial, row.values, today)
            inner.commit()
        except TrialshipError as exc:
            inner.rollback()
            row.errors.append(str(exc))
    if commit and result.ok:
        outer.commit()
        audit.record(
            session,
            actor,
            "subject.import",
            object_type="trial",
            object_id=trial.id,
            trial_id=trial.id,
            details={"rows": len(result.rows)},
        )
        result.committed = True
    else:
        outer.rollback()
    return result
