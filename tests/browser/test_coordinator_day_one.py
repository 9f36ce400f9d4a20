"""A coordinator's first day, in a real Chromium against a real server: log in, register a
trial with a site, two subjects and three time points, and read the completeness matrix."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import PASSWORD
from trialship.app import Runtime


def _fill(page: Any, values: dict[str, str]) -> None:
    for name, value in values.items():
        field = page.locator(f"#{name}")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.click("#save")


def test_coordinator_registers_a_trial_and_reads_completeness(
    live_server: str,
    browser_page: Any,
    runtime: Runtime,
    make_user: Callable[..., Any],
    tmp_path: Path,
) -> None:
    page = browser_page
    make_user("admin@example.org", admin=True)
    today = runtime.today()

    page.goto(live_server + "/")
    page.fill("input[name=email]", "admin@example.org")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login")
    page.wait_for_selector("text=Trials")

    page.click("#new-trial")
    _fill(
        page,
        {
            "protocol_id": "ACM-301",
            "sponsor_name": "Acme Oncology",
            "short_name": "Acme 301",
            "irb_expiry": (today + dt.timedelta(days=365)).isoformat(),
        },
    )
    page.wait_for_selector("text=Trial ACM-301 created")

    page.click("#add-site")
    _fill(page, {"site_id": "S01", "name": "North Hospital"})

    for subject_id, baseline_days_ago in (("SUBJ-001", 100), ("SUBJ-002", 10)):
        page.click("#add-subject")
        _fill(
            page,
            {
                "subject_id": subject_id,
                "site_id": "S01",
                "baseline_date": (today - dt.timedelta(days=baseline_days_ago)).isoformat(),
            },
        )
        page.wait_for_selector(f"text={subject_id}")

    for timepoint_id, day in (("BL", "0"), ("W14", "98"), ("W26", "182")):
        page.click("#add-timepoint")
        _fill(
            page,
            {
                "timepoint_id": timepoint_id,
                "description": f"Visit {timepoint_id}",
                "day_offset": day,
                "window_minus": "7",
                "window_plus": "7",
            },
        )
        page.wait_for_selector(f"text=Visit {timepoint_id}")

    page.goto(page.url.split("#")[0].rstrip("/") + "/completeness")
    table = page.locator("table#completeness")
    table.wait_for()
    states = {
        (
            cell.get_attribute("data-subject"),
            cell.get_attribute("data-timepoint"),
        ): cell.get_attribute("data-state")
        for cell in table.locator("td[data-state]").all()
    }
    assert states == {
        ("SUBJ-001", "BL"): "missing",  # window closed 93 days ago, grace of 30 days over
        ("SUBJ-001", "W14"): "due",  # window open: day 98 of 100, -7/+7
        ("SUBJ-001", "W26"): "not_due",
        ("SUBJ-002", "BL"): "late",  # window closed 3 days ago, within the grace period
        ("SUBJ-002", "W14"): "not_due",
        ("SUBJ-002", "W26"): "not_due",
    }
    page.screenshot(path=str(tmp_path / "completeness.png"), full_page=True)
    docs_shot = os.environ.get("TRIALSHIP_DOCS_SCREENSHOT")
    if docs_shot:  # `TRIALSHIP_DOCS_SCREENSHOT=docs/completeness.png ./scripts/test -k day_one`
        page.screenshot(path=docs_shot, full_page=False)
