"""The OpenAPI part of disc sets: schemas, parameters and paths, merged into `spec`."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

INTEGER: Schema = {"type": "integer"}
DATETIME: Schema = {"type": "string", "format": "date-time"}
NULLABLE_DATETIME: Schema = {**DATETIME, "type": ["string", "null"]}
MEDIA = ["auto", "cd74", "cd80", "dvd", "dvd-dl", "bd25"]
POLICIES = ["pack", "subject", "timepoint", "exam"]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _output(properties: Schema) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }


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
    "DiscPlan": _output(
        {
            "medium": {"type": "string", "enum": MEDIA[1:]},
            "medium_label": {"type": "string"},
            "load": {"type": "string", "description": "which blank discs to load, how many"},
            "discs": {
                "type": "array",
                "items": _output(
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
    "Disc": _output(
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
    "DiscSet": _output(
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
            "discs": {"type": "array", "items": _ref("Disc")},
        }
    ),
    "DiscSetList": _output({"items": {"type": "array", "items": _ref("DiscSet")}}),
    "BurnRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["device"],
        "properties": {
            "device": {"type": "string", "description": "/dev/sr0, or stdio:PATH (a file)"}
        },
    },
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
    "set_id": _param("set_id", "the disc set's id"),
    "disc_pk": _param("disc_pk", "the disc's id"),
}


def _params(*names: str) -> list[Schema]:
    return [{"$ref": f"#/components/parameters/{n}"} for n in ("trial_id", *names)]


def _responses(errors: str, **extra: Schema) -> Schema:
    names = {
        "400": "BadRequest",
        "403": "Forbidden",
        "404": "NotFound",
        "409": "Conflict",
        "422": "Invalid",
    }
    responses: Schema = {"401": {"$ref": "#/components/responses/Unauthorized"}}
    for code in errors.split():
        responses[code] = {"$ref": f"#/components/responses/{names[code]}"}
    responses.update(extra)
    return dict(sorted(responses.items()))


def _json(schema: str, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _body(schema: str) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def _op(operation_id: str, summary: str, responses: Schema, body: str | None = None) -> Schema:
    operation: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["discs"],
        "responses": responses,
    }
    if body:
        operation["requestBody"] = _body(body)
    return operation


def _file(media_type: str, description: str) -> Schema:
    binary = {"type": "string", "contentMediaType": media_type}
    return {"description": description, "content": {media_type: {"schema": binary}}}


PATHS: dict[str, Schema] = {
    "/trials/{trial_id}/disc-sets/plan": {
        "parameters": _params(),
        "post": _op(
            "planDiscSet",
            "The discs a build would make (medium, fill), without writing anything",
            _responses("400 403 404 422", **{"200": _json("DiscPlan", "the plan")}),
            body="DiscSetChoice",
        ),
    },
    "/trials/{trial_id}/disc-sets": {
        "parameters": _params(),
        "get": _op(
            "listDiscSets",
            "The trial's disc sets with their discs",
            _responses("403 404", **{"200": _json("DiscSetList", "the disc sets")}),
        ),
        "post": _op(
            "createDiscSet",
            "Record a disc set and queue its build (ISO images + label PDFs); poll the job",
            _responses(
                "400 403 404 422",
                **{
                    "202": {
                        **_json("DiscSet", "accepted: the set, with job_id"),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    }
                },
            ),
            body="DiscSetChoice",
        ),
    },
    "/trials/{trial_id}/disc-sets/{set_id}": {
        "parameters": _params("set_id"),
        "get": _op(
            "getDiscSet",
            "A disc set with its discs and their burns",
            _responses("403 404", **{"200": _json("DiscSet", "the disc set")}),
        ),
        "delete": _op(
            "deleteDiscSet",
            "Delete a failed disc set (its build job stays in the job list)",
            _responses("403 404 409", **{"204": {"description": "deleted"}}),
        ),
    },
    "/trials/{trial_id}/discs/{disc_pk}/image.iso": {
        "parameters": _params("disc_pk"),
        "get": _op(
            "downloadDiscImage",
            "The disc's ISO 9660 image (ready discs only)",
            _responses("403 404", **{"200": _file("application/x-iso9660-image", "the image")}),
        ),
    },
    "/trials/{trial_id}/discs/{disc_pk}/label.pdf": {
        "parameters": _params("disc_pk"),
        "get": _op(
            "downloadDiscLabel",
            "The disc's label (PDF)",
            _responses("403 404", **{"200": _file("application/pdf", "the label")}),
        ),
    },
    "/trials/{trial_id}/discs/{disc_pk}/burn": {
        "parameters": _params("disc_pk"),
        "post": _op(
            "burnDisc",
            "Queue a burn of the image with xorriso on this server's drive (read back, recorded "
            "on the disc); poll the job. One burn per drive at a time: 409 when it is busy",
            _responses(
                "400 403 404 409 422",
                **{
                    "202": {
                        **_json("Job", "accepted: the burn job (kind disc_burn)"),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    }
                },
            ),
            body="BurnRequest",
        ),
    },
    "/trials/{trial_id}/disc-sets/{set_id}/rebuild": {
        "parameters": _params("set_id"),
        "post": _op(
            "rebuildDiscSet",
            "Queue a failed set's build again (same exams and options); poll its job",
            _responses(
                "403 404 409",
                **{
                    "202": {
                        **_json("DiscSet", "accepted: the set, with job_id"),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    }
                },
            ),
        ),
    },
    "/trials/{trial_id}/discs/{disc_pk}/mark-burned": {
        "parameters": _params("disc_pk"),
        "post": _op(
            "markDiscBurned",
            "Record the disc as burned elsewhere (not verified here)",
            _responses("403 404 422", **{"200": _json("Disc", "the disc")}),
        ),
    },
}
