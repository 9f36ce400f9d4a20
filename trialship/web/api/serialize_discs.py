"""JSON shapes of disc sets, discs and plans (see spec_discs for their schemas)."""

from __future__ import annotations

from typing import Any

from trialship.media.capacity import Medium
from trialship.registry.discs import Disc, DiscSet
from trialship.services.disc_sets import SetPlan
from trialship.services.json_shapes import enum_value, iso

Json = dict[str, Any]


def plan(obj: SetPlan) -> Json:
    return {
        "medium": obj.medium.key,
        "medium_label": obj.medium.label,
        "load": obj.load_hint,
        "discs": [
            {
                "index": d.index,
                "medium": d.medium.key,
                "exam_ids": list(d.exam_ids),
                "payload_bytes": d.payload_bytes,
                "estimated_bytes": d.estimated_bytes,
                "capacity_bytes": d.medium.bytes,
                "fill_percent": d.fill_percent,
            }
            for d in obj.discs
        ],
    }


def disc(obj: Disc) -> Json:
    capacity = Medium.from_key(obj.medium).bytes
    return {
        "id": obj.id,
        "disc_set_id": obj.disc_set_pk,
        "index": obj.index,
        "medium": obj.medium,
        "fileset_id": obj.fileset_id,
        "state": enum_value(obj.state),
        "image_bytes": obj.image_bytes,
        "fill_percent": round(100 * obj.image_bytes / capacity, 2),
        "sha256": obj.sha256,
        "manifest_sha256": obj.manifest_sha256,
        "exam_ids": [e.id for e in obj.exams],
        "burned_at": iso(obj.burned_at),
        "burned_by": obj.burned_by,
        "burn_device": obj.burn_device,
        "burn_verified": obj.burn_verified,
        "burn_message": obj.burn_message,
    }


def disc_set(obj: DiscSet) -> Json:
    return {
        "id": obj.id,
        "trial_id": obj.trial_id,
        "created_by": obj.created_by_label,
        "created_at": iso(obj.created_at),
        "medium": obj.medium,
        "policy": obj.policy,
        "label_template": obj.label_template,
        "state": enum_value(obj.state),
        "job_id": obj.job_id,
        "message": obj.message,
        "exam_ids": [e.id for e in obj.exams],
        "discs": [disc(d) for d in obj.discs],
    }
