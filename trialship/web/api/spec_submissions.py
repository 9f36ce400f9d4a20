"""The OpenAPI part of submissions, automation rules and jobs, merged into `spec`."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

INTEGER: Schema = {"type": "integer"}
STRING: Schema = {"type": "string"}
NULLABLE_DATETIME: Schema = {"type": ["string", "null"], "format": "date-time"}
STATES = ["queued", "running", "done", "failed", "cancelled"]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _output(properties: Schema) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }


def _nullable(kind: str) -> Schema:
    return {"type": [kind, "null"]}


PROGRESS = _output(
    {
        "files_done": INTEGER,
        "files_total": INTEGER,
        "bytes_done": INTEGER,
        "bytes_total": INTEGER,
        "bytes_per_second": _nullable("integer"),
        "seconds_left": _nullable("integer"),
        "percent": {"type": "number"},
    }
)
SUBMISSION_FIELDS: Schema = {
    "id": INTEGER,
    "trial_id": INTEGER,
    "destination": STRING,
    "destination_id": INTEGER,
    "scope": {"type": "string", "enum": ["exam", "timepoint", "subject", "disc_set"]},
    "scope_label": STRING,
    "exam_ids": {"type": "array", "items": INTEGER},
    "disc_set_id": _nullable("integer"),
    "package_form": {"type": "string", "enum": ["tree", "zip", "iso", "dicom"]},
    "trigger": {"type": "string", "description": "who asked: a user, cli:..., or rule N"},
    "state": {"type": "string", "enum": STATES},
    "attempts": INTEGER,
    "not_before": NULLABLE_DATETIME,
    "job_id": _nullable("integer"),
    "created_at": NULLABLE_DATETIME,
    "started_at": NULLABLE_DATETIME,
    "finished_at": NULLABLE_DATETIME,
    "message": STRING,
    "progress": PROGRESS,
    "has_receipt": {"type": "boolean"},
}
SUBMISSION = {**_output(SUBMISSION_FIELDS), "required": sorted(SUBMISSION_FIELDS)}
SUBMISSION_DETAIL = _output(
    {
        **SUBMISSION_FIELDS,
        "files": _output({"pending": INTEGER, "sent": INTEGER, "failed": INTEGER}),
        "failed": {
            "type": "array",
            "items": _output({"remote": STRING, "reason": STRING}),
        },
    }
)
DESTINATION_REF: Schema = {
    "type": ["string", "integer"],
    "description": "the destination's name or id",
}

SCHEMAS: dict[str, Schema] = {
    "Submission": SUBMISSION,
    "SubmissionDetail": SUBMISSION_DETAIL,
    "SubmissionList": _output({"items": {"type": "array", "items": _ref("Submission")}}),
    "SubmissionRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["destination"],
        "description": "one of exam_id, timepoint_id, subject_id, disc_set_id; every exam of "
        "it must be ready (de-identified, time point confirmed, pixel review done)",
        "properties": {
            "destination": DESTINATION_REF,
            "exam_id": INTEGER,
            "timepoint_id": STRING,
            "subject_id": STRING,
            "disc_set_id": INTEGER,
        },
    },
    "AutomationRule": _output(
        {
            "id": INTEGER,
            "trial_id": INTEGER,
            "destination": STRING,
            "destination_id": INTEGER,
            "timepoint_id": _nullable("string"),
            "mode": {"type": "string", "enum": ["on_ready", "daily"]},
            "daily_at": {"type": "string", "description": "HH:MM (office time) for daily"},
            "enabled": {"type": "boolean"},
            "created_by": STRING,
            "created_at": NULLABLE_DATETIME,
        }
    ),
    "AutomationRuleList": _output({"items": {"type": "array", "items": _ref("AutomationRule")}}),
    "AutomationRuleRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["destination"],
        "properties": {
            "destination": DESTINATION_REF,
            "timepoint_id": {"type": ["string", "null"], "description": "none: any time point"},
            "mode": {"type": "string", "enum": ["on_ready", "daily"]},
            "daily_at": STRING,
        },
    },
    "AutomationRulePatch": {
        "type": "object",
        "additionalProperties": False,
        "required": ["enabled"],
        "properties": {"enabled": {"type": "boolean"}},
    },
    "JobList": _output({"items": {"type": "array", "items": _ref("Job")}}),
}


def _param(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "integer", "minimum": 1},
    }


PARAMETERS = {
    "submission_pk": _param("submission_pk", "the submission's id"),
    "rule_pk": _param("rule_pk", "the rule's id"),
}
NAMES = {
    "400": "BadRequest",
    "403": "Forbidden",
    "404": "NotFound",
    "409": "Conflict",
    "422": "Invalid",
}


def _params(*names: str, trial: bool = True) -> list[Schema]:
    listed = ("trial_id", *names) if trial else names
    return [{"$ref": f"#/components/parameters/{n}"} for n in listed]


def _responses(errors: str, **extra: Schema) -> Schema:
    responses: Schema = {"401": {"$ref": "#/components/responses/Unauthorized"}}
    for code in errors.split():
        responses[code] = {"$ref": f"#/components/responses/{NAMES[code]}"}
    responses.update(extra)
    return dict(sorted(responses.items()))


def _json(schema: str, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _op(
    operation_id: str, summary: str, tag: str, responses: Schema, body: str | None = None
) -> Schema:
    operation: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": responses,
    }
    if body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return operation


STATE_QUERY: Schema = {
    "name": "state",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": STATES},
}
S = "submissions"
PATHS: dict[str, Schema] = {
    "/trials/{trial_id}/submissions": {
        "parameters": _params(),
        "get": {
            **_op(
                "listSubmissions",
                "What went where and when, what failed and why, what is waiting",
                S,
                _responses("403 404 422", **{"200": _json("SubmissionList", "newest first")}),
            ),
            "parameters": [STATE_QUERY],
        },
        "post": _op(
            "createSubmission",
            "Send exams (or a disc set) to a destination: queued as a job; poll it",
            S,
            _responses(
                "400 403 404 409 422",
                **{
                    "202": {
                        **_json("Submission", "accepted"),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    }
                },
            ),
            body="SubmissionRequest",
        ),
    },
    "/trials/{trial_id}/submissions/{submission_pk}": {
        "parameters": _params("submission_pk"),
        "get": _op(
            "getSubmission",
            "A submission: state, progress (files, bytes, rate, time left), failed files",
            S,
            _responses("403 404", **{"200": _json("SubmissionDetail", "the submission")}),
        ),
    },
    "/trials/{trial_id}/submissions/{submission_pk}/cancel": {
        "parameters": _params("submission_pk"),
        "post": _op(
            "cancelSubmission",
            "Stop a queued or running submission (confirmed files stay confirmed)",
            S,
            _responses("403 404 409", **{"200": _json("Submission", "the submission")}),
        ),
    },
    "/trials/{trial_id}/submissions/{submission_pk}/retry": {
        "parameters": _params("submission_pk"),
        "post": _op(
            "retrySubmission",
            "Queue a failed or cancelled submission again; confirmed files are not re-sent",
            S,
            _responses("403 404 409", **{"202": _json("Submission", "queued again")}),
        ),
    },
    "/trials/{trial_id}/submissions/{submission_pk}/receipt": {
        "parameters": _params("submission_pk"),
        "get": _op(
            "getSubmissionReceipt",
            "The signed receipt (verify with `trialship receipt verify`)",
            S,
            _responses("403 404", **{"200": _json("Receipt", "the receipt")}),
        ),
    },
    "/trials/{trial_id}/rules": {
        "parameters": _params(),
        "get": _op(
            "listAutomationRules",
            "The trial's automation rules",
            S,
            _responses("403 404", **{"200": _json("AutomationRuleList", "the rules")}),
        ),
        "post": _op(
            "createAutomationRule",
            "Send each ready exam (of a time point) to a destination, at once or daily",
            S,
            _responses("400 403 404 409 422", **{"201": _json("AutomationRule", "the rule")}),
            body="AutomationRuleRequest",
        ),
    },
    "/trials/{trial_id}/rules/{rule_pk}": {
        "parameters": _params("rule_pk"),
        "patch": _op(
            "updateAutomationRule",
            "Switch a rule on or off",
            S,
            _responses("400 403 404 422", **{"200": _json("AutomationRule", "the rule")}),
            body="AutomationRulePatch",
        ),
        "delete": _op(
            "deleteAutomationRule",
            "Delete a rule",
            S,
            _responses("403 404", **{"204": {"description": "deleted"}}),
        ),
    },
    "/jobs": {
        "get": {
            **_op(
                "listJobs",
                "The newest jobs of every kind (imports, disc builds, submissions) you may see",
                "jobs",
                _responses("422", **{"200": _json("JobList", "newest first")}),
            ),
            "parameters": [STATE_QUERY],
        },
    },
    "/jobs/{job_id}/cancel": {
        "parameters": _params("job_id", trial=False),
        "post": _op(
            "cancelJob",
            "Cancel a queued job, or a running submission",
            "jobs",
            _responses("403 404 409", **{"200": _json("Job", "the job")}),
        ),
    },
    "/jobs/{job_id}/retry": {
        "parameters": _params("job_id", trial=False),
        "post": _op(
            "retryJob",
            "Queue a failed or cancelled job again; it resumes where it stopped",
            "jobs",
            _responses("403 404 409", **{"202": _json("Job", "queued again")}),
        ),
    },
}
