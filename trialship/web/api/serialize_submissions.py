"""JSON shapes of submissions and automation rules (see spec_submissions for their schemas)."""

from __future__ import annotations

from typing import Any

from trialship.registry.submissions import AutomationRule, Submission, SubmissionFile
from trialship.services.json_shapes import iso
from trialship.services.submissions import progress_of

Json = dict[str, Any]


def submission(
    obj: Submission,
    *,
    files: dict[str, int] | None = None,
    failed: list[SubmissionFile] | None = None,
) -> Json:
    """A submission; with `files` (counts by state) and `failed` rows, its detail."""
    out: Json = {
        "id": obj.id,
        "trial_id": obj.trial_id,
        "destination": obj.destination.name,
        "destination_id": obj.destination_pk,
        "scope": obj.scope,
        "scope_label": obj.scope_label,
        "exam_ids": list(obj.exam_pks),
        "disc_set_id": obj.disc_set_pk,
        "package_form": obj.package_form,
        "trigger": obj.trigger,
        "state": obj.state.value,
        "attempts": obj.attempts,
        "not_before": iso(obj.not_before),
        "job_id": obj.job_id,
        "created_at": iso(obj.created_at),
        "started_at": iso(obj.started_at),
        "finished_at": iso(obj.finished_at),
        "message": obj.message,
        "progress": progress_of(obj).as_dict(),
        "has_receipt": obj.receipt is not None,
    }
    if files is not None:
        out["files"] = files
        out["failed"] = [
            {
                "remote": f"{row.group}/{row.remote}".lstrip("/"),
                "reason": row.detail.get("reason", ""),
            }
            for row in failed or []
        ]
    return out


def rule(obj: AutomationRule) -> Json:
    return {
        "id": obj.id,
        "trial_id": obj.trial_id,
        "destination": obj.destination.name,
        "destination_id": obj.destination_pk,
        "timepoint_id": obj.timepoint.timepoint_id if obj.timepoint else None,
        "mode": obj.mode.value,
        "daily_at": obj.daily_at,
        "enabled": obj.enabled,
        "created_by": obj.created_by,
        "created_at": iso(obj.created_at),
    }
