"""Fixtures of the submission tests: jobs run inline, trial ACM-301 seeded."""

from __future__ import annotations

import pytest

from tests.browser.conftest import browser_page  # noqa: F401  (the dashboard test's browser)
from tests.integration.exams.exam_samples import seed_trial
from trialship.app import Runtime
from trialship.registry.models import Trial


@pytest.fixture(autouse=True)
def _jobs_run_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALSHIP_QUEUE_URL", "memory:")


@pytest.fixture
def trial(runtime: Runtime) -> Trial:
    return seed_trial(runtime)
