"""Pieces the parts of the OpenAPI document share: references, output objects, path
parameters, error responses, JSON bodies and operations."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

INTEGER: Schema = {"type": "integer"}
STRING: Schema = {"type": "string"}
DATETIME: Schema = {"type": "string", "format": "date-time"}
NULLABLE_DATETIME: Schema = {**DATETIME, "type": ["string", "null"]}
ERROR_NAMES = {
    "400": "BadRequest",
    "403": "Forbidden",
    "404": "NotFound",
    "409": "Conflict",
    "422": "Invalid",
}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def output(properties: Schema) -> Schema:
    """An object the API returns: every property always present, nothing else."""
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }


def path_param(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "integer", "minimum": 1},
    }


def params(*names: str, trial: bool = True) -> list[Schema]:
    listed = ("trial_id", *names) if trial else names
    return [{"$ref": f"#/components/parameters/{n}"} for n in listed]


def responses(errors: str, **extra: Schema) -> Schema:
    """401 always, the error responses named by code ("403 404"), and the successes."""
    found: Schema = {"401": {"$ref": "#/components/responses/Unauthorized"}}
    for code in errors.split():
        found[code] = {"$ref": f"#/components/responses/{ERROR_NAMES[code]}"}
    found.update(extra)
    return dict(sorted(found.items()))


def json_content(schema: str, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": ref(schema)}}}


def operation(
    operation_id: str, summary: str, tag: str, answers: Schema, body: str | None = None
) -> Schema:
    found: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "responses": answers,
    }
    if body:
        found["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(body)}},
        }
    return found
