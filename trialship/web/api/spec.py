"""The OpenAPI 3.1 document of /api/v1, written by hand from a small table of routes.

tests/web/test_api_openapi.py checks that it validates, that every Flask rule under /api/v1 is
in it, and that the input schemas name exactly the fields the services accept.
"""

from __future__ import annotations

from functools import cache

from trialship import __version__
from trialship.services.audit import MAX_PAGE as AUDIT_MAX_LIMIT
from trialship.services.exams import KEY_FORMATS
from trialship.web.api import spec_discs, spec_submissions
from trialship.web.api.spec_parts import DATETIME, INTEGER, Schema, ref
from trialship.web.api.spec_parts import output as _output
from trialship.web.api.spec_parts import path_param as _param


def _text(description: str = "", max_length: int = 64) -> Schema:
    schema: Schema = {"type": "string", "maxLength": max_length}
    if description:
        schema["description"] = description
    return schema


def _nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


DATE: Schema = {"type": "string", "format": "date"}
NULLABLE_DATE: Schema = _nullable(DATE)


def _input(properties: Schema, required: list[str] | None = None) -> Schema:
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _list_of(name: str) -> Schema:
    return _output({"items": {"type": "array", "items": ref(name)}})


TRIAL_INPUT: Schema = {
    "protocol_id": _text("Clinical Trial Protocol ID (0012,0020); unique"),
    "sponsor_name": _text("Clinical Trial Sponsor Name (0012,0010)"),
    "short_name": _text(),
    "protocol_name": _text(),
    "ethics_committee_name": _text(),
    "ethics_approval_number": _text(),
    "irb_expiry": {**NULLABLE_DATE, "description": "after this date the trial is read-only"},
    "status": {"type": "string", "enum": ["active", "closed"]},
    "coordinating_center": _text(),
    "deid_profile": {"type": "string", "description": "de-identification profile (TOML)"},
    "disc_media": {"type": "string", "enum": ["auto", "cd74", "cd80", "dvd", "dvd-dl", "bd25"]},
    "disc_policy": {"type": "string", "enum": ["pack", "subject", "timepoint", "exam"]},
    "label_template": _text(max_length=16),
    "missing_after_days": {"type": "integer", "minimum": 0, "maximum": 3650},
}
SITE_INPUT: Schema = {"site_id": _text("the site's code in the trial"), "name": _text()}
IDENTIFIER: Schema = _input({"mrn": _text("PatientID at the hospital"), "issuer": _text()}, ["mrn"])
SUBJECT_INPUT: Schema = {
    "subject_id": _text(
        "Clinical Trial Subject ID (0012,0040), also the Patient's Name: unique in the trial, "
        "without ^ or ="
    ),
    "reading_id": _text("Clinical Trial Subject Reading ID (0012,0042)"),
    "site_id": _nullable(_text("code of a site of this trial")),
    "status": {"type": "string", "enum": ["screening", "enrolled", "withdrawn"]},
    "consent_distribution": {"type": "boolean"},
    "baseline_date": {
        **NULLABLE_DATE,
        "description": "day 0 of the schedule, 1900-01-01 to 2999-12-31",
    },
    "identifiers": {
        "type": "array",
        "writeOnly": True,
        "description": "original patient identifiers; stored encrypted, never returned",
        "items": IDENTIFIER,
    },
}
EXPECTED_EXAM: Schema = _input(
    {
        "modality": {"type": "string", "pattern": "^[A-Za-z0-9_ ]{1,16}$"},
        "description_pattern": _text("shell pattern on the Study/Series Description"),
        "count": {"type": "integer", "minimum": 1, "maximum": 100},
    },
    ["modality"],
)
TIMEPOINT_INPUT: Schema = {
    "timepoint_id": _text("Clinical Trial Time Point ID (0012,0050)"),
    "description": _text(max_length=1024),
    "order": {"type": "integer", "minimum": 0},
    "day_offset": {"type": "integer", "minimum": -3650, "maximum": 36500},
    "window_minus": {
        "type": "integer",
        "minimum": -3650,
        "maximum": 3650,
        "description": "days before the target; window_minus + window_plus must be >= 0",
    },
    "window_plus": {"type": "integer", "minimum": -3650, "maximum": 3650},
    "expected_exams": {"type": "array", "items": EXPECTED_EXAM},
}

DESTINATION_INPUT: Schema = {
    "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"},
    "kind": {"type": "string", "enum": ["sftp", "dicom", "dicomweb"], "description": "fixed"},
    "enabled": {"type": "boolean"},
    "allow_identified": {
        "type": "boolean",
        "description": "may receive data not marked de-identified; administrators only, audited",
    },
    "host": _text("sftp, dicom", 255),
    "port": {"type": "integer", "minimum": 1, "maximum": 65535, "description": "22 / 104"},
    "username": _text("sftp"),
    "auth": {"type": "string", "enum": ["key", "password"], "description": "sftp"},
    "private_key": {
        "type": "string",
        "writeOnly": True,
        "description": "sftp: an OpenSSH or PEM private key without passphrase; never returned",
    },
    "generate_key": {
        "type": "boolean",
        "writeOnly": True,
        "description": "sftp: generate a new Ed25519 key (the default for key auth on create)",
    },
    "password": {"type": "string", "writeOnly": True, "description": "sftp; never returned"},
    "remote_path": _text(
        "sftp: template with {protocol_id} {site_id} {subject_id} {timepoint_id}", 512
    ),
    "package_form": {"type": "string", "enum": ["tree", "zip", "iso"], "description": "sftp"},
    "marker": _text("sftp: completion marker file name, written last"),
    "called_aet": _text("dicom", 16),
    "calling_aet": _text("dicom (default TRIALSHIP)", 16),
    "tls": {"type": "boolean", "description": "dicom"},
    "max_pdu": {"type": "integer", "minimum": 0, "description": "dicom; 0 = unlimited"},
    "commitment": {"type": "boolean", "description": "dicom: storage commitment"},
    "rate_limit_kbps": {
        "type": "integer",
        "minimum": 0,
        "description": "submissions never send faster than this (kB/s); 0 = no limit",
    },
    "commitment_port": {
        "type": "integer",
        "minimum": 0,
        "maximum": 65535,
        "description": "dicom: our port for reports on a new association; 0 = same association",
    },
    "tls_ca_pem": {
        "type": "string",
        "description": "dicom: the PEM certificate the peer's must chain to; empty = system CAs",
    },
    "base_url": _text("dicomweb: http(s)://host:port/path", 1024),
    "auth_header": {
        "type": "string",
        "writeOnly": True,
        "description": "dicomweb: 'Bearer ...' or 'Name: value'; never returned",
    },
}
HOST_KEY: Schema = {
    "oneOf": [
        _output({"type": {"type": "string"}, "fingerprint": {"type": "string"}}),
        {"type": "null"},
    ]
}
DESTINATION_FIELDS: Schema = {
    "id": INTEGER,
    "trial_id": INTEGER,
    **{
        k: {key: val for key, val in v.items() if key != "writeOnly"}
        for k, v in DESTINATION_INPUT.items()
        if k not in {"private_key", "generate_key", "password", "auth_header"}
    },
    "private_key_set": {"type": "boolean"},
    "password_set": {"type": "boolean"},
    "auth_header_set": {"type": "boolean"},
    "public_key": {"type": ["string", "null"], "description": "sftp: give it to the sponsor"},
    "host_key": {**HOST_KEY, "description": "sftp: the pinned (trusted) server key"},
    "pending_host_key": {
        **HOST_KEY,
        "description": "sftp: a key the server offered, waiting for a trial admin to confirm",
    },
    "last_test": _output(
        {
            "at": {**DATETIME, "type": ["string", "null"]},
            "outcome": {"type": ["string", "null"], "enum": ["ok", "unpinned", "failed", None]},
            "message": {"type": "string"},
        }
    ),
    "created_at": DATETIME,
    "updated_at": DATETIME,
}
JOB_STATES = ["queued", "running", "done", "failed", "cancelled"]
EXAM_FIELDS: Schema = {
    "id": INTEGER,
    "trial_id": INTEGER,
    "subject_id": {"type": "string"},
    "timepoint_id": {"type": ["string", "null"]},
    "timepoint_confirmed": {
        "type": "boolean",
        "description": "false: chosen as the nearest visit, a coordinator confirms it",
    },
    "study_date": NULLABLE_DATE,
    "modality": {"type": "string"},
    "description": {"type": "string"},
    "study_instance_uid": {"type": "string", "description": "the de-identified Study UID"},
    "state": {"type": "string", "enum": ["received", "deidentified", "quarantined"]},
    "file_count": INTEGER,
    "total_bytes": INTEGER,
    "needs_pixel_review": {"type": "boolean"},
    "pixel_reviewed_at": {**DATETIME, "type": ["string", "null"]},
    "has_receipt": {"type": "boolean"},
    "created_at": DATETIME,
}
WINDOW: Schema = _output({"start": DATE, "target": DATE, "end": DATE})
CELL_STATES = ["not_due", "due", "received", "late", "missing"]

SCHEMAS: dict[str, Schema] = {
    "ErrorBody": {
        "type": "object",
        "properties": {
            "code": {
                "type": "string",
                "description": "stable machine-readable name, e.g. invalid, not_found",
            },
            "message": {"type": "string"},
            "field": {"type": "string", "description": "the field at fault, if one"},
        },
        "required": ["code", "message"],
    },
    "Error": _output({"error": ref("ErrorBody")}),
    "Trial": _output(
        {
            "id": INTEGER,
            **{name: schema for name, schema in TRIAL_INPUT.items()},
            "read_only_reason": {
                "type": ["string", "null"],
                "description": "why the trial is read-only (IRB expired, closed), or null",
            },
            "created_at": DATETIME,
        }
    ),
    "TrialCreate": _input(TRIAL_INPUT, ["protocol_id", "sponsor_name", "short_name"]),
    "TrialUpdate": _input(TRIAL_INPUT),
    "TrialList": _list_of("Trial"),
    "Site": _output({"id": INTEGER, "trial_id": INTEGER, **SITE_INPUT}),
    "SiteCreate": _input(SITE_INPUT, ["site_id"]),
    "SiteUpdate": _input(SITE_INPUT),
    "SiteList": _list_of("Site"),
    "Subject": _output(
        {
            "id": INTEGER,
            "trial_id": INTEGER,
            **{k: v for k, v in SUBJECT_INPUT.items() if k != "identifiers"},
            "identifier_count": {"type": "integer", "minimum": 0},
            "created_at": DATETIME,
        }
    ),
    "SubjectCreate": _input(SUBJECT_INPUT, ["subject_id"]),
    "SubjectUpdate": _input(SUBJECT_INPUT),
    "SubjectList": _list_of("Subject"),
    "ImportRow": _output(
        {
            "line": INTEGER,
            "values": {
                "type": "object",
                "description": "the row's cells; the identifiers column is replaced by "
                "identifier_count",
                "additionalProperties": {"type": ["string", "integer"]},
            },
            "errors": {"type": "array", "items": {"type": "string"}},
        }
    ),
    "ImportResult": {
        "type": "object",
        "properties": {
            "ok": {"type": "boolean", "description": "every row is valid"},
            "committed": {"type": "boolean"},
            "row_count": INTEGER,
            "error_count": INTEGER,
            "rows": {"type": "array", "items": ref("ImportRow")},
            "error": ref("ErrorBody"),
        },
        "required": ["ok", "committed", "row_count", "error_count", "rows"],
    },
    "ExpectedExam": _output(
        {
            "modality": {"type": "string"},
            "description_pattern": {"type": "string"},
            "count": {"type": "integer"},
        }
    ),
    "TimePoint": _output(
        {
            "id": INTEGER,
            "trial_id": INTEGER,
            **{k: v for k, v in TIMEPOINT_INPUT.items() if k != "expected_exams"},
            "expected_exams": {"type": "array", "items": ref("ExpectedExam")},
        }
    ),
    "TimePointCreate": _input(TIMEPOINT_INPUT, ["timepoint_id"]),
    "TimePointUpdate": _input(TIMEPOINT_INPUT),
    "TimePointList": _list_of("TimePoint"),
    "Window": WINDOW,
    "Cell": _output(
        {
            "timepoint_id": {"type": "string"},
            "timepoint_pk": INTEGER,
            "state": {"type": "string", "enum": CELL_STATES},
            "window": {
                "oneOf": [ref("Window"), {"type": "null"}],
                "description": "null when the subject has no baseline date",
            },
            "received": INTEGER,
            "expected": INTEGER,
            "out_of_window": INTEGER,
        }
    ),
    "Completeness": _output(
        {
            "trial_id": INTEGER,
            "date": {**DATE, "description": "the day the states were computed for"},
            "timepoints": {
                "type": "array",
                "items": _output(
                    {
                        "id": INTEGER,
                        "timepoint_id": {"type": "string"},
                        "description": {"type": "string"},
                    }
                ),
            },
            "subjects": {
                "type": "array",
                "items": _output(
                    {
                        "id": INTEGER,
                        "subject_id": {"type": "string"},
                        "baseline_date": NULLABLE_DATE,
                        "cells": {"type": "array", "items": ref("Cell")},
                    }
                ),
            },
            "totals": _output({state: INTEGER for state in CELL_STATES}),
        }
    ),
    "Membership": _output(
        {
            "trial_id": INTEGER,
            "protocol_id": {"type": "string"},
            "role": {"type": "string", "enum": ["viewer", "media", "coordinator", "trial_admin"]},
        }
    ),
    "Job": _output(
        {
            "id": INTEGER,
            "kind": {"type": "string", "description": "import"},
            "trial_id": {"type": ["integer", "null"]},
            "state": {"type": "string", "enum": JOB_STATES},
            "done": INTEGER,
            "total": INTEGER,
            "message": {"type": "string", "description": "progress or outcome, never PHI"},
            "created_at": DATETIME,
            "started_at": {**DATETIME, "type": ["string", "null"]},
            "finished_at": {**DATETIME, "type": ["string", "null"]},
        }
    ),
    "Exam": {
        **_output(EXAM_FIELDS),
        "properties": {
            **EXAM_FIELDS,
            "series": {
                "type": "array",
                "description": "only when one exam is asked for",
                "items": _output(
                    {
                        "series_instance_uid": {"type": "string"},
                        "series_number": {"type": ["integer", "null"]},
                        "modality": {"type": "string"},
                        "description": {"type": "string"},
                        "instances": INTEGER,
                    }
                ),
            },
        },
    },
    "ExamList": _list_of("Exam"),
    "TimePointConfirmation": _input(
        {"timepoint_id": _text("the time point's ID")}, ["timepoint_id"]
    ),
    "QuarantinedFile": _output(
        {
            "id": INTEGER,
            "trial_id": INTEGER,
            "job_id": {"type": ["integer", "null"], "description": "the import that refused it"},
            "item": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": "its place among that import's inputs, from 1 (folders sorted, "
                "zip entries as stored); null for a file refused before places were kept",
            },
            "zip_entry": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": "for an entry of a zip that was read: its place in the zip's "
                "directory, from 1 (as zipinfo lists them); null otherwise. Names are never "
                "given: they may identify a patient",
            },
            "sha256": {
                "type": ["string", "null"],
                "description": "the SHA-256 of the file's bytes (as sha256sum prints it), which "
                "tells which file it was without its name; null when it was refused unread",
            },
            "reason": {"type": "string"},
            "size": INTEGER,
            "original_kept": {
                "type": "boolean",
                "description": "the file is kept in the originals area (until the retention)",
            },
            "created_at": DATETIME,
        }
    ),
    "QuarantinedFileList": _list_of("QuarantinedFile"),
    "KeyEntry": _output(
        {
            "subject_id": {"type": "string"},
            "exam": INTEGER,
            "timepoint_id": {"type": "string"},
            "kind": {"type": "string", "description": "what was replaced: patient ID, UID, ..."},
            "original": {"type": "string", "description": "the original (identifying) value"},
            "replacement": {"type": "string"},
        }
    ),
    "KeyEntryList": _list_of("KeyEntry"),
    "AttributeReports": {
        "type": "object",
        "description": "by tag and sequence path, the action and why; never a value",
        "properties": {
            "exam": {"type": "integer"},
            "files": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string", "description": "as in the receipt"},
                        "sop_instance_uid": {"type": "string"},
                        "report": {
                            "type": ["integer", "null"],
                            "description": "index into reports; null if imported before "
                            "reports were kept",
                        },
                    },
                    "required": ["path", "sop_instance_uid", "report"],
                },
            },
            "reports": {
                "type": "array",
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            name: {"type": "string"}
                            for name in ("tag", "keyword", "path", "action", "detail")
                        },
                        "required": ["tag", "keyword", "path", "action", "detail"],
                    },
                },
            },
        },
        "required": ["exam", "files", "reports"],
    },
    "Receipt": {
        "type": "object",
        "description": "the signed de-identification receipt: payload and Ed25519 signature",
        "properties": {"payload": {"type": "object"}, "signature": {"type": "object"}},
        "required": ["payload", "signature"],
    },
    "Destination": {
        "type": "object",
        "description": "fields of the destination's kind only; secrets only as *_set",
        "properties": DESTINATION_FIELDS,
        "required": [
            "id",
            "trial_id",
            "name",
            "kind",
            "enabled",
            "allow_identified",
            "last_test",
            "created_at",
            "updated_at",
        ],
        "additionalProperties": False,
    },
    "DestinationCreate": _input(DESTINATION_INPUT, ["name", "kind"]),
    "DestinationUpdate": _input(DESTINATION_INPUT),
    "DestinationList": _list_of("Destination"),
    "HostKeyConfirmation": _input(
        {"fingerprint": {"type": "string", "pattern": "^SHA256:[A-Za-z0-9+/]{43}=?$"}},
        ["fingerprint"],
    ),
    "ConnectionTest": _output(
        {
            "outcome": {"type": "string", "enum": ["ok", "unpinned", "failed"]},
            "ok": {"type": "boolean"},
            "message": {"type": "string"},
            "offered_host_key": {**HOST_KEY, "description": "sftp: the key the server offered"},
            "destination": ref("Destination"),
        }
    ),
    "AuditEvent": _output(
        {
            "id": INTEGER,
            "at": DATETIME,
            "actor": {"type": "string", "description": "a user's e-mail, cli:NAME, or system"},
            "user_id": {"type": ["integer", "null"]},
            "action": {"type": "string", "description": "e.g. exam.key_view, trial.update"},
            "object_type": {"type": "string"},
            "object_id": {"type": "string"},
            "trial_id": {"type": ["integer", "null"]},
            "details": {
                "type": "object",
                "description": "what changed or how many; identifiers are named, never quoted",
            },
        }
    ),
    "AuditEventList": _output(
        {
            "items": {"type": "array", "items": ref("AuditEvent")},
            "total": {**INTEGER, "description": "events matching the filters, of all pages"},
        }
    ),
    "Me": _output(
        {
            "id": INTEGER,
            "email": {"type": "string"},
            "name": {"type": "string"},
            "is_admin": {"type": "boolean"},
            "memberships": {"type": "array", "items": ref("Membership")},
        }
    ),
}

ERRORS = {
    "400": ("BadRequest", "the body is not a JSON object"),
    "401": ("Unauthorized", "no token, or an unknown or revoked one, or a disabled user"),
    "403": ("Forbidden", "the user's role does not allow this, or the trial is read-only"),
    "404": ("NotFound", "no such object in this trial"),
    "409": ("Conflict", "the object exists already"),
    "422": ("Invalid", "a field is invalid; error.field names it"),
}


def _error_response(description: str, *, challenge: bool = False) -> Schema:
    response: Schema = {
        "description": description,
        "content": {"application/json": {"schema": ref("Error")}},
    }
    if challenge:
        response["headers"] = {
            "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}
        }
    return response


PARAMETERS = {
    "trial_id": _param("trial_id", "the trial's id"),
    "site_pk": _param("site_pk", "the site's id"),
    "subject_pk": _param("subject_pk", "the subject's id (not its Subject ID)"),
    "timepoint_pk": _param("timepoint_pk", "the time point's id"),
    "destination_pk": _param("destination_pk", "the destination's id"),
    "job_id": _param("job_id", "the job's id"),
    "exam_pk": _param("exam_pk", "the exam's id"),
    "subject_id": {
        "name": "subject_id",
        "in": "query",
        "required": False,
        "description": "assign every file to this Subject ID instead of matching by patient ID",
        "schema": {"type": "string"},
    },
    "timepoint_id": {
        "name": "timepoint_id",
        "in": "query",
        "required": False,
        "description": "the Time Point ID (with subject_id); else from the study date",
        "schema": {"type": "string"},
    },
    "commit": {
        "name": "commit",
        "in": "query",
        "required": False,
        "description": "false (default): a dry run; true: save every row, or none",
        "schema": {"type": "boolean", "default": False},
    },
}


def _json(schema: str) -> Schema:
    return {"application/json": {"schema": ref(schema)}}


def _operation(
    operation_id: str,
    summary: str,
    tag: str,
    *,
    ok: tuple[str, str] | None = None,
    created: str | None = None,
    body: str | None = None,
    errors: str = "",
    extra: Schema | None = None,
) -> Schema:
    responses: Schema = {"401": {"$ref": "#/components/responses/Unauthorized"}}
    if ok:
        responses["200"] = {"description": ok[1], "content": _json(ok[0])}
    if created:
        responses["201"] = {
            "description": "created",
            "headers": {"Location": {"schema": {"type": "string"}}},
            "content": _json(created),
        }
    for code in errors.split():
        responses[code] = {"$ref": f"#/components/responses/{ERRORS[code][0]}"}
    operation: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": dict(sorted(responses.items())),
    }
    if body:
        operation["requestBody"] = {"required": True, "content": _json(body)}
    operation.update(extra or {})
    return operation


def _text_file(media_type: str, description: str) -> Schema:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def _query(name: str, description: str, schema: Schema) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


AUDIT_QUERY: list[Schema] = [
    _query("trial_id", "only this trial's events", {"type": "integer", "minimum": 1}),
    _query(
        "user_id",
        "only this user's events (administrators only: 403 for others)",
        {"type": "integer", "minimum": 1},
    ),
    _query("action", "an action, or its prefix (e.g. exam.)", {"type": "string", "maxLength": 64}),
    _query(
        "limit",
        "events per page",
        {"type": "integer", "minimum": 1, "maximum": AUDIT_MAX_LIMIT, "default": 100},
    ),
    _query("offset", "events to skip (newest first)", {"type": "integer", "minimum": 0}),
]


def _import_operation() -> Schema:
    operation = _operation(
        "importSubjects",
        "Import subjects from CSV: a dry run, or all rows at once",
        "subjects",
        ok=("ImportResult", "the dry run: every row with its errors"),
        errors="403 404",
    )
    operation["description"] = (
        "The body is a CSV file (UTF-8; comma, semicolon or tab) with a header naming columns "
        "among subject_id, reading_id, site_id, status, consent_distribution, baseline_date, "
        "identifiers (MRN|ISSUER separated by ';')."
    )
    operation["parameters"] = [{"$ref": "#/components/parameters/commit"}]
    operation["requestBody"] = {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
    operation["responses"]["201"] = {
        "description": "committed: every row was saved",
        "content": _json("ImportResult"),
    }
    operation["responses"]["415"] = _error_response("the body is not sent as text/csv")
    operation["responses"]["422"] = {
        "description": "the file is unreadable (error.field is file), or with commit=true a row "
        "failed and nothing was saved (rows say which)",
        "content": _json("ImportResult"),
    }
    operation["responses"] = dict(sorted(operation["responses"].items()))
    return operation


def _create_import_operation() -> Schema:
    operation = _operation(
        "createImport",
        "Import DICOM files into the trial (queued): matched, de-identified, receipted",
        "exams",
        errors="403 404 422",
    )
    operation["description"] = (
        "Send multipart/form-data with one or more `files` (DICOM files or zips), or the body "
        "itself as application/zip or application/dicom. The answer is the queued job: poll "
        "/jobs/{job_id} for its progress."
    )
    operation["parameters"] = [
        {"$ref": "#/components/parameters/subject_id"},
        {"$ref": "#/components/parameters/timepoint_id"},
    ]
    binary = {"type": "string", "contentMediaType": "application/octet-stream"}
    operation["requestBody"] = {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"files": {"type": "array", "items": binary}},
                }
            },
            "application/zip": {"schema": binary},
            "application/dicom": {"schema": binary},
        },
    }
    operation["responses"]["202"] = {
        "description": "accepted: the import job",
        "headers": {"Location": {"schema": {"type": "string"}}},
        "content": _json("Job"),
    }
    operation["responses"]["415"] = _error_response("the body is of another type")
    operation["responses"] = dict(sorted(operation["responses"].items()))
    return operation


def _key_operation() -> Schema:
    operation = _operation(
        "getKey",
        "The re-identification key (trial admins only; every read is audited)",
        "exams",
        ok=("KeyEntryList", "the key's entries; with format=csv the key as a CSV file"),
        errors="403 404 422",
    )
    operation["parameters"] = [
        _query(
            "format",
            "csv: the key as a CSV file (audited as an export); another value is refused "
            "(422) before anything is read",
            {"type": "string", "enum": KEY_FORMATS, "default": "json"},
        )
    ]
    operation["responses"]["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    return operation


def _profile_operation() -> Schema:
    operation = _operation(
        "getTrialProfile",
        "The trial's whole de-identification profile as TOML, as `trialship deid --profile` "
        "reads it, without the UID secret",
        "trials",
        errors="403 404",
    )
    operation["responses"]["200"] = _text_file("application/toml", "the profile (UTF-8)")
    operation["responses"] = dict(sorted(operation["responses"].items()))
    return operation


def _collection(
    path_params: list[str], noun: str, schema: str, tag: str, *, create_errors: str
) -> Schema:
    return {
        "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in path_params],
        "get": _operation(
            f"list{noun}s",
            f"List the {tag}",
            tag,
            ok=(f"{schema}List", f"the {tag}"),
            errors="403 404" if path_params else "",
        ),
        "post": _operation(
            f"create{noun}",
            f"Create a {noun.lower()}",
            tag,
            created=schema,
            body=f"{schema}Create",
            errors=create_errors,
        ),
    }


def _item(path_params: list[str], noun: str, schema: str, tag: str) -> Schema:
    return {
        "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in path_params],
        "get": _operation(
            f"get{noun}", f"Get a {noun.lower()}", tag, ok=(schema, noun), errors="403 404"
        ),
        "patch": _operation(
            f"update{noun}",
            f"Change some fields of a {noun.lower()}",
            tag,
            ok=(schema, f"the changed {noun.lower()}"),
            body=f"{schema}Update",
            errors="400 403 404 409 422",
        ),
    }


T = ["trial_id"]
PATHS: dict[str, Schema] = {
    "/me": {
        "get": _operation(
            "getMe", "The token's user and their trial memberships", "me", ok=("Me", "the user")
        )
    },
    "/openapi.json": {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document",
            "tags": ["meta"],
            "responses": {
                "200": {
                    "description": "the OpenAPI document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "401": {"$ref": "#/components/responses/Unauthorized"},
            },
        }
    },
    "/trials": _collection([], "Trial", "Trial", "trials", create_errors="400 403 409 422"),
    "/trials/{trial_id}": _item(T, "Trial", "Trial", "trials"),
    "/trials/{trial_id}/sites": _collection(
        T, "Site", "Site", "sites", create_errors="400 403 404 409 422"
    ),
    "/trials/{trial_id}/sites/{site_pk}": _item([*T, "site_pk"], "Site", "Site", "sites"),
    "/trials/{trial_id}/subjects": _collection(
        T, "Subject", "Subject", "subjects", create_errors="400 403 404 409 422"
    ),
    "/trials/{trial_id}/subjects/import": {
        "parameters": [{"$ref": "#/components/parameters/trial_id"}],
        "post": _import_operation(),
    },
    "/trials/{trial_id}/subjects/{subject_pk}": _item(
        [*T, "subject_pk"], "Subject", "Subject", "subjects"
    ),
    "/trials/{trial_id}/timepoints": _collection(
        T, "TimePoint", "TimePoint", "timepoints", create_errors="400 403 404 409 422"
    ),
    "/trials/{trial_id}/timepoints/{timepoint_pk}": _item(
        [*T, "timepoint_pk"], "TimePoint", "TimePoint", "timepoints"
    ),
    "/trials/{trial_id}/imports": {
        "parameters": [{"$ref": "#/components/parameters/trial_id"}],
        "post": _create_import_operation(),
    },
    "/jobs/{job_id}": {
        "parameters": [{"$ref": "#/components/parameters/job_id"}],
        "get": _operation(
            "getJob", "A job's state and progress", "exams", ok=("Job", "the job"), errors="403 404"
        ),
    },
    "/trials/{trial_id}/exams": {
        "parameters": [{"$ref": "#/components/parameters/trial_id"}],
        "get": _operation(
            "listExams",
            "List the trial's exams",
            "exams",
            ok=("ExamList", "the exams"),
            errors="403 404",
        ),
    },
    "/trials/{trial_id}/exams/{exam_pk}": {
        "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in [*T, "exam_pk"]],
        "get": _operation(
            "getExam",
            "An exam with its series",
            "exams",
            ok=("Exam", "the exam"),
            errors="403 404",
        ),
    },
    "/trials/{trial_id}/exams/{exam_pk}/receipt": {
        "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in [*T, "exam_pk"]],
        "get": _operation(
            "getExamReceipt",
            "The exam's signed de-identification receipt",
            "exams",
            ok=("Receipt", "the receipt (verify with the instance's public key)"),
            errors="403 404",
        ),
    },
    "/trials/{trial_id}/exams/{exam_pk}/report": {
        "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in [*T, "exam_pk"]],
        "get": _operation(
            "getExamReport",
            "What de-identification did to each attribute of each file of the exam",
            "exams",
            ok=("AttributeReports", "each file with the index of its report; the reports"),
            errors="403 404",
        ),
    },
    "/trials/{trial_id}/exams/{exam_pk}/timepoint": {
        "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in [*T, "exam_pk"]],
        "post": _operation(
            "confirmExamTimePoint",
            "Set and confirm the exam's time point (its files are de-identified again if it "
            "changes)",
            "exams",
            ok=("Exam", "the exam"),
            body="TimePointConfirmation",
            errors="400 403 404 422",
        ),
    },
    "/trials/{trial_id}/exams/{exam_pk}/pixel-review": {
        "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in [*T, "exam_pk"]],
        "post": _operation(
            "reviewExamPixels",
            "Record that the exam's pixels were reviewed for burned-in text",
            "exams",
            ok=("Exam", "the exam"),
            errors="403 404",
        ),
    },
    "/trials/{trial_id}/quarantine": {
        "parameters": [{"$ref": "#/components/parameters/trial_id"}],
        "get": _operation(
            "listQuarantine",
            "The files an import refused, newest first, each with its reason",
            "exams",
            ok=("QuarantinedFileList", "the quarantined files"),
            errors="403 404",
        ),
    },
    "/trials/{trial_id}/key": {
        "parameters": [{"$ref": "#/components/parameters/trial_id"}],
        "get": _key_operation(),
    },
    "/trials/{trial_id}/profile": {
        "parameters": [{"$ref": "#/components/parameters/trial_id"}],
        "get": _profile_operation(),
    },
    "/audit": {
        "get": _operation(
            "listAuditEvents",
            "The audit trail, newest first: administrators see every event, others the events "
            "of their trials",
            "audit",
            ok=("AuditEventList", "the events of the page"),
            errors="403 404 422",
            extra={"parameters": AUDIT_QUERY},
        ),
    },
    "/trials/{trial_id}/destinations": _collection(
        T, "Destination", "Destination", "destinations", create_errors="400 403 404 409 422"
    ),
    "/trials/{trial_id}/destinations/{destination_pk}": _item(
        [*T, "destination_pk"], "Destination", "Destination", "destinations"
    ),
    "/trials/{trial_id}/destinations/{destination_pk}/test": {
        "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in [*T, "destination_pk"]],
        "post": _operation(
            "testDestination",
            "Test the connection: SSH login and a listing, C-ECHO, or a QIDO-RS request",
            "destinations",
            ok=("ConnectionTest", "the outcome (a failure is an answer, not an error)"),
            errors="403 404",
            extra={
                "description": "An SFTP server seen for the first time gets no credential: the "
                "outcome is `unpinned` with the offered host key, which a trial admin confirms "
                "with /pin. A key that differs from the pinned one fails, showing both."
            },
        ),
    },
    "/trials/{trial_id}/destinations/{destination_pk}/pin": {
        "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in [*T, "destination_pk"]],
        "post": _operation(
            "pinDestinationHostKey",
            "Confirm (pin) the SFTP host key the server offered at the last test",
            "destinations",
            ok=("Destination", "the destination with its pinned host key"),
            body="HostKeyConfirmation",
            errors="400 403 404 422",
        ),
    },
    "/trials/{trial_id}/completeness": {
        "parameters": [{"$ref": "#/components/parameters/trial_id"}],
        "get": _operation(
            "getCompleteness",
            "Subjects x time points: the state and visit window of each cell, and totals",
            "completeness",
            ok=("Completeness", "the matrix as of today"),
            errors="403 404 422",
        ),
    },
}


SCHEMAS.update(spec_discs.SCHEMAS)
PARAMETERS.update(spec_discs.PARAMETERS)
PATHS.update(spec_discs.PATHS)
SCHEMAS.update(spec_submissions.SCHEMAS)
PARAMETERS.update(spec_submissions.PARAMETERS)
PATHS.update(spec_submissions.PATHS)


@cache
def document() -> Schema:
    """The OpenAPI document (built once; callers must not change it)."""
    responses = {
        name: _error_response(description, challenge=name == "Unauthorized")
        for name, description in ERRORS.values()
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "trialship API",
            "version": __version__,
            "description": "The registry of a clinical-trial imaging office: trials, sites, "
            "subjects, time points, completeness, exam imports and their receipts, delivery "
            "destinations, disc sets (plan, build, download, burn). Every "
            "request needs `Authorization: Bearer <token>`. "
            'Errors are `{"error": {code, message, field?}}`. '
            "Original patient identifiers can be written but are never returned.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": name}
            for name in [
                "me",
                "trials",
                "sites",
                "subjects",
                "timepoints",
                "completeness",
                "exams",
                "destinations",
                "discs",
                "submissions",
                "jobs",
                "audit",
                "meta",
            ]
        ],
        "paths": PATHS,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API token created on the user's page or with the CLI",
                }
            },
            "schemas": SCHEMAS,
            "parameters": PARAMETERS,
            "responses": responses,
        },
    }
