"""The tasks of the queue. Each is registered on the runtime's huey instance."""

from __future__ import annotations

from typing import TYPE_CHECKING

from huey import Huey, crontab

from trialship.services import housekeeping

if TYPE_CHECKING:
    from trialship.app import Runtime


def register_tasks(queue: Huey, runtime: Runtime) -> None:
    @queue.periodic_task(crontab(minute="5"))  # type: ignore[untyped-decorator]
    def irb_expiry() -> int:
        """Hourly: record in the audit trail each trial whose IRB approval has lapsed."""
        with runtime.db.unit_of_work() as session:
            return housekeeping.record_irb_expiries(session, runtime.today())
