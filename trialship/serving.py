"""Run the web server (waitress) with the job worker inside, or the worker alone."""

from __future__ import annotations

import logging
import threading

from waitress.server import create_server

from trialship.app import Runtime
from trialship.web import create_app

log = logging.getLogger("trialship")


def serve(runtime: Runtime, *, host: str, port: int, threads: int, worker: bool) -> None:
    """Serve until interrupted. With `worker`, the huey consumer runs in this process.

    The consumer owns the main thread (it handles SIGINT/SIGTERM); the web server runs
    beside it and is closed when the consumer stops.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app(runtime=runtime)
    server = create_server(app, host=host, port=port, threads=threads, ident="trialship")
    log.info(
        "trialship serving on http://%s:%s/ (worker %s)", host, port, "inside" if worker else "off"
    )
    if not worker:
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
        return
    web = threading.Thread(target=server.run, name="waitress", daemon=True)
    web.start()
    try:
        run_worker(runtime, workers=2)
    finally:
        server.close()


def run_worker(runtime: Runtime, *, workers: int) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from trialship.jobs.tasks import sweep_submissions

    # What a killed worker left (and retries now due) is queued again before the first task.
    resumed = sweep_submissions(runtime)
    if resumed:
        log.info("queued %d submission(s) to resume", resumed)
    consumer = runtime.queue.create_consumer(workers=workers, worker_type="thread")
    consumer.run()
