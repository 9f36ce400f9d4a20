"""Explicit JSON shapes of the registry objects: dates as ISO text (times in UTC, with the
offset), enums as their values.

Original patient identifiers are never part of any shape: a subject shows only how many it has.
The exam's shape, and how dates and enums are written, are in services.json_shapes: the command
line gives them too.
"""

from __future__ import annotations

import datetime as dt

from trialship.registry.delivery import Destination
from trialship.registry.imaging import QuarantinedFile
from trialship.registry.models import (
    AuditEvent,
    Job,
    Membership,
    Site,
    Subject,
    TimePoint,
    Trial,
    User,
)
from trialship.schedule import Cell, Window
from trialship.services.authz import lock_reason
from trialship.services.completeness import Matrix
from trialship.services.exams import content_sha256
from trialship.services.json_shapes import Json, enum_value, iso
from trialship.services.json_shapes import exam as exam
from trialship.services.subject_import import ImportResult, RowResult
from trialship.transfer.probe import ProbeResult


def trial(obj: Trial, today: dt.date) -> Json:
    return {
        "id": obj.id,
        "protocol_id": obj.protocol_id,
        "short_name": obj.short_name,
        "sponsor_name": obj.sponsor_name,
        "protocol_name": obj.protocol_name,
        "ethics_committee_name": obj.ethics_committee_name,
        "ethics_approval_number": obj.ethics_approval_number,
        "irb_expiry": iso(obj.irb_expiry),
        "status": enum_value(obj.status),
        "coordinating_center": obj.coordinating_center,
        "deid_profile": obj.deid_profile,
        "disc_media": obj.disc_media,
        "disc_policy": obj.disc_policy,
        "label_template": obj.label_template,
        "missing_after_days": obj.missing_after_days,
        "read_only_reason": lock_reason(obj, today),
        "created_at": iso(obj.created_at),
    }


def site(obj: Site) -> Json:
    return {"id": obj.id, "trial_id": obj.trial_id, "site_id": obj.site_id, "name": obj.name}


def subject(obj: Subject) -> Json:
    return {
        "id": obj.id,
        "trial_id": obj.trial_id,
        "subject_id": obj.subject_id,
        "reading_id": obj.reading_id,
        "site_id": obj.site.site_id if obj.site is not None else None,
        "status": enum_value(obj.status),
        "consent_distribution": bool(obj.consent_distribution),
        "baseline_date": iso(obj.baseline_date),
        "identifier_count": len(obj.identifiers),
        "created_at": iso(obj.created_at),
    }


def timepoint(obj: TimePoint) -> Json:
    return {
        "id": obj.id,
        "trial_id": obj.trial_id,
        "timepoint_id": obj.timepoint_id,
        "description": obj.description,
        "order": obj.order,
        "day_offset": obj.day_offset,
        "window_minus": obj.window_minus,
        "window_plus": obj.window_plus,
        "expected_exams": [
            {
                "modality": exam.modality,
                "description_pattern": exam.description_pattern,
                "count": exam.count,
            }
            for exam in obj.expected_exams
        ],
    }


def window(obj: Window | None) -> Json | None:
    if obj is None:
        return None
    return {"start": iso(obj.start), "target": iso(obj.target), "end": iso(obj.end)}


def cell(obj: Cell, tp: TimePoint) -> Json:
    return {
        "timepoint_id": tp.timepoint_id,
        "timepoint_pk": tp.id,
        "state": enum_value(obj.state),
        "window": window(obj.window),
        "received": obj.received,
        "expected": obj.expected,
        "out_of_window": obj.out_of_window,
    }


def completeness(obj: Matrix, trial_obj: Trial) -> Json:
    return {
        "trial_id": trial_obj.id,
        "date": iso(obj.today),
        "timepoints": [
            {"id": tp.id, "timepoint_id": tp.timepoint_id, "description": tp.description}
            for tp in obj.timepoints
        ],
        "subjects": [
            {
                "id": row.subject.id,
                "subject_id": row.subject.subject_id,
                "baseline_date": iso(row.subject.baseline_date),
                "cells": [cell(c, tp) for c, tp in zip(row.cells, obj.timepoints, strict=True)],
            }
            for row in obj.rows
        ],
        "totals": {enum_value(state): count for state, count in obj.totals().items()},
    }


def _row_values(values: dict[str, str]) -> Json:
    # The identifiers column holds original MRNs: never echo it, only count its entries.
    shown: Json = {k: v for k, v in values.items() if k != "identifiers"}
    if "identifiers" in values:
        shown["identifier_count"] = len([p for p in values["identifiers"].split(";") if p.strip()])
    return shown


def import_row(row: RowResult) -> Json:
    return {"line": row.line, "values": _row_values(row.values), "errors": list(row.errors)}


def import_result(result: ImportResult) -> Json:
    return {
        "ok": result.ok,
        "committed": result.committed,
        "row_count": len(result.rows),
        "error_count": len(result.error_rows),
        "rows": [import_row(row) for row in result.rows],
    }


def membership(obj: Membership) -> Json:
    return {
        "trial_id": obj.trial_id,
        "protocol_id": obj.trial.protocol_id,
        "role": enum_value(obj.role),
    }


def me(user: User) -> Json:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "is_admin": bool(user.is_admin),
        "memberships": [
            membership(m) for m in sorted(user.memberships, key=lambda m: m.trial.protocol_id)
        ],
    }


def job(obj: Job) -> Json:
    return {
        "id": obj.id,
        "kind": obj.kind,
        "trial_id": obj.trial_id,
        "state": enum_value(obj.state),
        "done": obj.done,
        "total": obj.total,
        "message": obj.message,
        "created_at": iso(obj.created_at),
        "started_at": iso(obj.started_at),
        "finished_at": iso(obj.finished_at),
    }


def quarantined_file(obj: QuarantinedFile) -> Json:
    """A quarantined input: the reason, never its name (names may hold PHI); which file it was
    by its job, its place among the job's inputs and, when it was read, its SHA-256."""
    return {
        "id": obj.id,
        "trial_id": obj.trial_id,
        "job_id": obj.job_id,
        "item": obj.item,
        "zip_entry": obj.zip_entry,
        "sha256": content_sha256(obj),
        "reason": obj.reason,
        "size": obj.size,
        "original_kept": bool(obj.stored_path),
        "created_at": iso(obj.created_at),
    }


def audit_event(obj: AuditEvent) -> Json:
    """An event of the audit trail (its details name identifiers, never quote them)."""
    return {
        "id": obj.id,
        "at": iso(obj.at),
        "actor": obj.actor,
        "user_id": obj.user_id,
        "action": obj.action,
        "object_type": obj.object_type,
        "object_id": obj.object_id,
        "trial_id": obj.trial_id,
        "details": obj.details or {},
    }


def _host_key(kind: str | None, fingerprint: str | None) -> Json | None:
    return {"type": kind, "fingerprint": fingerprint} if fingerprint else None


def destination(obj: Destination) -> Json:
    """A destination: its secrets only as set / not set."""
    shape: Json = {
        "id": obj.id,
        "trial_id": obj.trial_id,
        "name": obj.name,
        "kind": enum_value(obj.kind),
        "enabled": obj.enabled,
        "allow_identified": obj.allow_identified,
        "rate_limit_kbps": obj.rate_limit_kbps,
        "last_test": {
            "at": iso(obj.last_test_at),
            "outcome": obj.last_test_outcome or None,
            "message": obj.last_test_message,
        },
        "created_at": iso(obj.created_at),
        "updated_at": iso(obj.updated_at),
    }
    if obj.kind == "sftp":
        shape.update(
            host=obj.host,
            port=obj.port,
            username=obj.username,
            auth=obj.auth,
            private_key_set=obj.private_key_encrypted is not None,
            password_set=obj.password_encrypted is not None,
            public_key=obj.public_key or None,
            host_key=_host_key(obj.host_key_type, obj.host_key_fingerprint),
            pending_host_key=_host_key(obj.pending_host_key_type, obj.pending_host_key_fingerprint),
            remote_path=obj.remote_path,
            package_form=obj.package_form,
            marker=obj.marker,
        )
    elif obj.kind == "dicom":
        shape.update(
            host=obj.host,
            port=obj.port,
            called_aet=obj.called_aet,
            calling_aet=obj.calling_aet,
            tls=obj.tls,
            tls_ca_pem=obj.tls_ca_pem,
            max_pdu=obj.max_pdu,
            commitment=obj.commitment,
            commitment_port=obj.commitment_port,
        )
    else:
        shape.update(base_url=obj.base_url, auth_header_set=obj.auth_header_encrypted is not None)
    return shape


def probe_result(result: ProbeResult, obj: Destination) -> Json:
    offered = result.host_key
    return {
        "outcome": result.outcome,
        "ok": result.ok,
        "message": result.message,
        "offered_host_key": _host_key(offered.type, offered.fingerprint) if offered else None,
        "destination": destination(obj),
    }
