"""The task queue: huey on SQLite (embedded, one machine) or Redis (many machines).

Tasks take ids, are idempotent, and record progress in a Job row (services/jobs.py).
"""

from __future__ import annotations

from huey import Huey, RedisHuey, SqliteHuey

from trialship.errors import ConfigError


def build_queue(url: str) -> Huey:
    """`sqlite:////abs/queue.db`, `redis://host:6379/0`, or `memory:` (tests: run inline)."""
    if url.startswith("sqlite:///"):
        return SqliteHuey("trialship", filename=url.removeprefix("sqlite:///"))
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("trialship", url=url)
    if url == "memory:":
        return Huey("trialship", immediate=True)
    raise ConfigError(f"unsupported queue URL {url!r}", field="TRIALSHIP_QUEUE_URL")
