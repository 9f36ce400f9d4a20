"""The OpenAPI part of submissions, automation rules and jobs, merged into `spec`."""

from __future__ import annotations

from trialship.web.api.spec_parts import (
    INTEGER,
    NULLABLE_DATETIME,
    STRING,
    Schema,
    json_content,
    operation,
    output,
    params,
    path_param,
    ref,
    responses,
)

STATES = ["queued", "running", "done", "failed", "cancelled"]


def _nullable(kind: str) -> Schema:
    return {"type": [kind, "null"]}


PROGRESS = output(
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
SUBMISSION = {**output(SUBMISSION_FIELDS), "required": sorted(SUBMISSION_FIELDS)}
SUBMISSION_DETAIL = output(
    {
        **SUBMISSION_FIELDS,
        "files": output({"pending": INTEGER, "sent": INTEGER, "failed": INTEGER}),
        "failed": {
            "type": "array",
            "items": output({"remote": STRING, "reason": STRING}),
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
    "SubmissionList": output({"items": {"type": "array", "items": ref("Submission")}}),
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
    "AutomationRule": output(
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
    "AutomationRuleList": output({"items": {"type": "array", "items": ref("AutomationRule")}}),
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
    "JobList": output({"items": {"type": "array", "items": ref("Job")}}),
}


PARAMETERS = {
    "submission_pk": path_param("submission_pk", "the submission's id"),
    "rule_pk": path_param("rule_pk", "the rule's id"),
}


STATE_QUERY: Schema = {
    "name": "state",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": STATES},
}
S = "submissions"
PATHS: dict[str, Schema] = {
    "/trials/{trial_id}/submissions": {
        "parameters": params(),
        "get": {
            **operation(
                "listSubmissions",
                "What went where and when, what failed and why, what is waiting",
                S,
                responses("403 404 422", **{"200": json_content("SubmissionList", "newest first")}),
            ),
            "parameters": [STATE_QUERY],
        },
        "post": operation(
            "createSubmission",
            "Send exams (or a disc set) to a destination: queued as a job; poll it",
            S,
            responses(
                "400 403 404 409 422",
                **{
                    "202": {
                        **json_content("Submission", "accepted"),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    }
                },
            ),
            body="SubmissionRequest",
        ),
    },
    "/trials/{trial_id}/submissions/{submission_pk}": {
        "parameters": params("submission_pk"),
        "get": operation(
            "getSubmission",
            "A submission: state, progress (files, bytes, rate, time left), failed files",
            S,
            responses("403 404", **{"200": json_content("SubmissionDetail", "the submission")}),
        ),
    },
    "/trials/{trial_id}/submissions/{submission_pk}/cancel": {
        "parameters": params("submission_pk"),
        "post": operation(
            "cancelSubmission",
            "Stop a queued or running submission (confirmed files stay confirmed)",
            S,
            responses("403 404 409", **{"200": json_content("Submission", "the submission")}),
        ),
    },
    "/trials/{trial_id}/submissions/{submission_pk}/retry": {
        "parameters": params("submission_pk"),
        "post": operation(
            "retrySubmission",
            "Queue a failed or cancelled submission again; confirmed files are not re-sent",
            S,
            responses("403 404 409", **{"202": json_content("Submission", "queued again")}),
        ),
    },
    "/trials/{trial_id}/submissions/{submission_pk}/receipt": {
        "parameters": params("submission_pk"),
        "get": operation(
            "getSubmissionReceipt",
            "The signed receipt (verify with `trialship receipt verify`)",
            S,
            responses("403 404", **{"200": json_content("Receipt", "the receipt")}),
        ),
    },
    "/trials/{trial_id}/rules": {
        "parameters": params(),
        "get": operation(
            "listAutomationRules",
            "The trial's automation rules",
            S,
            responses("403 404", **{"200": json_content("AutomationRuleList", "the rules")}),
        ),
        "post": operation(
            "createAutomationRule",
            "Send each ready exam (of a time point) to a destination, at once or daily",
            S,
            responses("400 403 404 409 422", **{"201": json_content("AutomationRule", "the rule")}),
            body="AutomationRuleRequest",
        ),
    },
    "/trials/{trial_id}/rules/{rule_pk}": {
        "parameters": params("rule_pk"),
        "patch": operation(
            "updateAutomationRule",
            "Switch a rule on or off",
            S,
            responses("400 403 404 422", **{"200": json_content("AutomationRule", "the rule")}),
            body="AutomationRulePatch",
        ),
        "delete": operation(
            "deleteAutomationRule",
            "Delete a rule",
            S,
            responses("403 404", **{"204": {"description": "deleted"}}),
        ),
    },
    "/jobs": {
        "get": {
            **operation(
                "listJobs",
                "The newest jobs of every kind (imports, disc builds, submissions) you may see",
                "jobs",
                responses("422", **{"200": json_content("JobList", "newest first")}),
            ),
            "parameters": [STATE_QUERY],
        },
    },
    "/jobs/{job_id}/cancel": {
        "parameters": params("job_id", trial=False),
        "post": operation(
            "cancelJob",
            "Cancel a queued job, or a running submission",
            "jobs",
            responses("403 404 409", **{"200": json_content("Job", "the job")}),
        ),
    },
    "/jobs/{job_id}/retry": {
        "parameters": params("job_id", trial=False),
        "post": operation(
            "retryJob",
            "Queue a failed or cancelled job again; it resumes where it stopped",
            "jobs",
            responses("403 404 409", **{"202": json_content("Job", "queued again")}),
        ),
    },
}
