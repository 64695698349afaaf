"""Run the API with uvicorn: in the foreground (`lcrec serve`) or on a background thread (tests, notebooks)."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI

# On shutdown, requests still computing get this long; then the waiting ones are failed (see MicroBatcher.stop).
GRACEFUL_SHUTDOWN_S = 10


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve `app` until interrupted."""
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)


class BackgroundServer:
    """uvicorn on a daemon thread; `port=0` picks a free port. Use as a context manager.

    `url` is valid once `start()` returns; `start` waits at most `startup_timeout` seconds.
    """

    def __init__(
        self,
        app: FastAPI,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        startup_timeout: float = 30.0,
    ):
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_level=log_level,
                lifespan="on",
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            )
        )
        self.startup_timeout = startup_timeout
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> BackgroundServer:
        self._thread = threading.Thread(target=self.server.run, name="lcrec-uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the API server did not start within {self.startup_timeout:.0f} s")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
