"""serve's request path imports nothing from `prefect.server` (issue 28: the start at the event works
with the `prefect-client` package, which has no server).

`tests/client_smoke.py` is the check; `make test-client` runs it in a venv holding `prefect-client`.
Here it runs in a fresh interpreter of the test venv (full `prefect`), where an import of
`prefect.server` would go unnoticed otherwise: this catches the regression on every `make test`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SMOKE = Path(__file__).parent / "client_smoke.py"


def _smoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SMOKE), *args], capture_output=True, text=True, timeout=120)


def test_serve_request_path_imports_no_prefect_server() -> None:
    result = _smoke()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: ") and "no prefect.server module" in result.stdout


def test_the_check_sees_a_prefect_server_import() -> None:
    """The check itself: a module that imports `prefect.server` fails it, naming the module."""
    result = _smoke("prefect.server.schemas.states")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL: importing prefect.server.schemas.states imported" in result.stdout


def test_the_prefect_client_venv_gets_the_plugin_requirements_without_prefect() -> None:
    """`make test-client` installs these beside prefect-client: never `prefect` itself (directly or
    through prefect-sqlalchemy), always what the plugin imports."""
    requirements = _smoke("--requirements").stdout.split()
    names = {r.split("<")[0].split(">")[0].split("=")[0].lower() for r in requirements}
    assert not names & {"prefect", "fastapi", "prefect-sqlalchemy"}, requirements
    assert {"httpx", "openai", "pydantic", "sqlalchemy"} <= names, requirements
    integrations = _smoke("--integrations").stdout.split()
    assert len(integrations) == 1 and integrations[0].startswith("prefect-sqlalchemy"), integrations
