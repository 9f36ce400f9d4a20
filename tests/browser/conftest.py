"""A real server (waitress on 127.0.0.1) and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from waitress import wasyncore
from waitress.server import create_server

from trialship.app import Runtime
from trialship.web import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture
def live_server(runtime: Runtime) -> Iterator[str]:
    app = create_app(runtime=runtime)
    # Port 0: the server binds a free port itself, so no other process can take it first.
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    stop = threading.Event()

    def serve() -> None:
        # One poll at a time, and the sockets closed here between two: closed from the test's
        # thread while this one waited in select(), select failed on a closed descriptor.
        while not stop.is_set():
            server.asyncore.loop(timeout=0.1, map=server._map, count=1)
        server.task_dispatcher.shutdown()
        wasyncore.close_all(server._map)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive(), "the test server did not stop"


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[object]:
    # A missing browser is a failure, never a skip: ./scripts/test installs Debian's chromium.
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: run ./scripts/test to install it"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": 820})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()
