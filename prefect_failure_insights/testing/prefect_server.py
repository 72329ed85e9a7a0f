"""A real `prefect server start` on 127.0.0.1, on a free port, with its state in a folder.

Used by the end-to-end tests, the benchmarks and ``make demo``; it is what a user
runs too, only started and stopped for them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrefectServer:
    """Start and stop a local Prefect server.

    Example:
        ```python
        with PrefectServer(Path("/tmp/prefect-home")) as server:
            subprocess.run([...], env={**os.environ, **server.env()})
        ```
    """

    def __init__(self, home: Path, port: int | None = None, ui: bool = False, *,
                 database_url: str | None = None) -> None:
        self.home = Path(home).resolve()
        self.port = port or free_port()
        self.ui = ui
        #: The server's own database (Prefect's production setup: PostgreSQL, e.g.
        #: ``postgresql+asyncpg://postgres@127.0.0.1:5432/prefect``); SQLite in ``home`` without it.
        self.database_url = database_url
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.home / "server.log"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment variables that point a process at this server."""
        return {
            "PREFECT_API_URL": self.api_url,
            "PREFECT_UI_URL": self.ui_url,
            # The UI asks this address for its data; without it, a server on a port other than
            # 4200 shows an empty UI that cannot reach its API.
            "PREFECT_UI_API_URL": self.api_url,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }

    def start(self, timeout_s: float = 120.0) -> PrefectServer:
        """Start the server and wait until ``/api/health`` answers."""
        self.home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **self.env(),
            "PREFECT_UI_ENABLED": "true" if self.ui else "false",
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        }
        if self.database_url:
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = self.database_url
        env.pop("PREFECT_API_KEY", None)
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start",
             "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"prefect server exited with code {self.process.returncode}; see {self.log_path}"
                )
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"prefect server did not answer within {timeout_s:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        """Stop the server and everything it started."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=5)

    def __enter__(self) -> PrefectServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
