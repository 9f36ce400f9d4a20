"""The OpenAPI part of disc sets: schemas, parameters and paths, merged into `spec`."""

from __future__ import annotations

from trialship.web.api.spec_parts import (
    DATETIME,
    INTEGER,
    NULLABLE_DATETIME,
    Schema,
    json_content,
    operation,
    output,
    params,
    path_param,
    ref,
    responses,
)

MEDIA = ["auto", "cd74", "cd80", "dvd", "dvd-dl", "bd25"]
POLICIES = ["pack", "subject", "timepoint", "exam"]


CHOICE: Schema = {
    "type": "object",
    "additionalProperties": False,
    "description": "The exams (exam_ids, or every eligible exam matching the filters) and the "
    "options (default: the trial's disc settings). Only de-identified exams whose pixel "
    "review is done (when one is needed) are eligible.",
    "properties": {
        "exam_ids": {"type": "array", "items": INTEGER},
        "subject_id": {"type": "string", "description": "filter: a Subject ID"},
        "timepoint_id": {"type": "string", "description": "filter: a Time Point ID"},
        "state": {
            "type": "string",
            "description": "filter: an exam state, or not_on_disc (on no ready disc yet)",
        },
        "media": {"type": "string", "enum": ["", *MEDIA]},
        "policy": {"type": "string", "enum": ["", *POLICIES]},
        "label_template": {"type": "string"},
    },
}

SCHEMAS: dict[str, Schema] = {
    "DiscSetChoice": CHOICE,
    "DiscPlan": output(
        {
            "medium": {"type": "string", "enum": MEDIA[1:]},
            "medium_label": {"type": "string"},
            "load": {"type": "string", "description": "which blank discs to load, how many"},
            "discs": {
                "type": "array",
                "items": output(
                    {
                        "index": INTEGER,
                        "medium": {"type": "string"},
                        "exam_ids": {"type": "array", "items": INTEGER},
                        "payload_bytes": INTEGER,
                        "estimated_bytes": INTEGER,
                        "capacity_bytes": INTEGER,
                        "fill_percent": {"type": "number"},
                    }
                ),
            },
        }
    ),
    "Disc": output(
        {
            "id": INTEGER,
            "disc_set_id": INTEGER,
            "index": INTEGER,
            "medium": {"type": "string"},
            "fileset_id": {"type": "string", "description": "the Volume and File-set ID"},
            "state": {"type": "string", "enum": ["planned", "ready", "failed"]},
            "image_bytes": INTEGER,
            "fill_percent": {"type": "number"},
            "sha256": {"type": "string"},
            "manifest_sha256": {"type": "string", "description": "what the label's QR holds"},
            "exam_ids": {"type": "array", "items": INTEGER},
            "burned_at": NULLABLE_DATETIME,
            "burned_by": {"type": "string"},
            "burn_device": {"type": "string"},
            "burn_verified": {"type": "boolean"},
            "burn_message": {"type": "string", "description": "the outcome, or xorriso's error"},
        }
    ),
    "DiscSet": output(
        {
            "id": INTEGER,
            "trial_id": INTEGER,
            "created_by": {"type": "string"},
            "created_at": DATETIME,
            "medium": {"type": "string"},
            "policy": {"type": "string"},
            "label_template": {"type": "string"},
            "state": {"type": "string", "enum": ["planned", "building", "ready", "failed"]},
            "job_id": {"type": ["integer", "null"]},
            "message": {"type": "string"},
            "exam_ids": {"type": "array", "items": INTEGER},
            "discs": {"type": "array", "items": ref("Disc")},
        }
    ),
    "DiscSetList": output({"items": {"type": "array", "items": ref("DiscSet")}}),
    "BurnRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["device"],
        "properties": {
            "device": {"type": "string", "description": "/dev/sr0, or stdio:PATH (a file)"}
        },
    },
}


PARAMETERS = {
    "set_id": path_param("set_id", "the disc set's id"),
    "disc_pk": path_param("disc_pk", "the disc's id"),
}


def _disc_op(operation_id: str, summary: str, answers: Schema, body: str | None = None) -> Schema:
    return operation(operation_id, summary, "discs", answers, body)


def _file(media_type: str, description: str) -> Schema:
    binary = {"type": "string", "contentMediaType": media_type}
    return {"description": description, "content": {media_type: {"schema": binary}}}


PATHS: dict[str, Schema] = {
    "/trials/{trial_id}/disc-sets/plan": {
        "parameters": params(),
        "post": _disc_op(
            "planDiscSet",
            "The discs a build would make (medium, fill), without writing anything",
            responses("400 403 404 422", **{"200": json_content("DiscPlan", "the plan")}),
            body="DiscSetChoice",
        ),
    },
    "/trials/{trial_id}/disc-sets": {
        "parameters": params(),
        "get": _disc_op(
            "listDiscSets",
            "The trial's disc sets with their discs",
            responses("403 404", **{"200": json_content("DiscSetList", "the disc sets")}),
        ),
        "post": _disc_op(
            "createDiscSet",
            "Record a disc set and queue its build (ISO images + label PDFs); poll the job",
            responses(
                "400 403 404 422",
                **{
                    "202": {
                        **json_content("DiscSet", "accepted: the set, with job_id"),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    }
                },
            ),
            body="DiscSetChoice",
        ),
    },
    "/trials/{trial_id}/disc-sets/{set_id}": {
        "parameters": params("set_id"),
        "get": _disc_op(
            "getDiscSet",
            "A disc set with its discs and their burns",
            responses("403 404", **{"200": json_content("DiscSet", "the disc set")}),
        ),
        "delete": _disc_op(
            "deleteDiscSet",
            "Delete a failed disc set (its build job stays in the job list)",
            responses("403 404 409", **{"204": {"description": "deleted"}}),
        ),
    },
    "/trials/{trial_id}/discs/{disc_pk}/image.iso": {
        "parameters": params("disc_pk"),
        "get": _disc_op(
            "downloadDiscImage",
            "The disc's ISO 9660 image (ready discs only)",
            responses("403 404", **{"200": _file("application/x-iso9660-image", "the image")}),
        ),
    },
    "/trials/{trial_id}/discs/{disc_pk}/label.pdf": {
        "parameters": params("disc_pk"),
        "get": _disc_op(
            "downloadDiscLabel",
            "The disc's label (PDF)",
            responses("403 404", **{"200": _file("application/pdf", "the label")}),
        ),
    },
    "/trials/{trial_id}/discs/{disc_pk}/burn": {
        "parameters": params("disc_pk"),
        "post": _disc_op(
            "burnDisc",
            "Queue a burn of the image with xorriso on this server's drive (read back, recorded "
            "on the disc); poll the job. One burn per drive at a time: 409 when it is busy",
            responses(
                "400 403 404 409 422",
                **{
                    "202": {
                        **json_content("Job", "accepted: the burn job (kind disc_burn)"),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    }
                },
            ),
            body="BurnRequest",
        ),
    },
    "/trials/{trial_id}/disc-sets/{set_id}/rebuild": {
        "parameters": params("set_id"),
        "post": _disc_op(
            "rebuildDiscSet",
            "Queue a failed set's build again (same exams and options); poll its job",
            responses(
                "403 404 409",
                **{
                    "202": {
                        **json_content("DiscSet", "accepted: the set, with job_id"),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    }
                },
            ),
        ),
    },
    "/trials/{trial_id}/discs/{disc_pk}/mark-burned": {
        "parameters": params("disc_pk"),
        "post": _disc_op(
            "markDiscBurned",
            "Record the disc as burned elsewhere (not verified here)",
            responses("403 404 422", **{"200": json_content("Disc", "the disc")}),
        ),
    },
}
