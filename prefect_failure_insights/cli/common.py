"""What every command shares: errors as one line and an exit code, options, output.

Exit codes scripts can rely on:

* 0: done (for ``summarize``/``show``: a summary exists and was printed);
* 1: something failed or no summary was made (Prefect API or database unreachable,
  run out of scope, ``doctor`` found a failing check);
* 2: bad input (unknown run id, a run that did not fail, a missing block, a bad option).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from prefect_failure_insights.defaults import DEFAULT_BLOCK_NAME

if TYPE_CHECKING:
    from prefect_failure_insights.models import LLMEndpoint
    from prefect_failure_insights.store import Database

T = TypeVar("T")

SETTINGS_OPTION = typer.Option(DEFAULT_BLOCK_NAME, "--settings-block",
                               help="Name of the failure-insights-settings block.")
LLM_URL_OPTION = typer.Option(None, "--llm-url", help="Ask this OpenAI-compatible endpoint instead, with no API key "
                              "unless --llm-api-key-env names its own.")
LLM_KEY_ENV_OPTION = typer.Option(None, "--llm-api-key-env", metavar="VAR",
                                  help="The environment variable that holds --llm-url's own API key (the configured "
                                       "block's key is never sent to another URL).")


class SummaryFormat(str, Enum):
    text = "text"
    markdown = "markdown"
    json = "json"


class TextOrJson(str, Enum):
    text = "text"
    json = "json"


def echo(text: str, *, err: bool = False) -> None:
    """Print ``text`` made `inert`: whatever a run or a model wrote, the terminal receives no
    escape sequence, control or bidi character from it."""
    from prefect_failure_insights.redaction import inert

    typer.echo(inert(text), err=err)


def fail(message: str, code: int) -> typer.Exit:
    """Print ``Error: message`` on stderr (inert); the `typer.Exit` to raise with ``code``."""
    echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def llm_endpoint(url: str | None, key_env: str | None) -> LLMEndpoint | None:
    """``--llm-url`` with its own key, read from the environment variable ``--llm-api-key-env``
    names (never from the command line, where it would stay in the shell's history)."""
    from prefect_failure_insights.models import LLMEndpoint

    if key_env and not url:
        raise fail("--llm-api-key-env names the key of --llm-url: give --llm-url too.", 2)
    if not url:
        return None
    key = os.environ.get(key_env, "").strip() if key_env else None
    if key_env and not key:
        raise fail(f"--llm-api-key-env {key_env}: that environment variable is not set (or empty).", 2)
    return LLMEndpoint(url=url, api_key=key or None)


def api_url() -> str:
    from prefect.settings import get_current_settings

    return str(get_current_settings().api.url or "an ephemeral local API (PREFECT_API_URL is not set)")


def quiet_engine_logs() -> None:
    """Keep Prefect's engine logs (every task run starting and finishing) off the terminal: the
    answer is what a command prints. They still go to the API (the summarizer run's page); shown
    again with ``failure-insights --verbose``. Warnings and errors still show."""
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    for logger in [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(max(handler.level, logging.WARNING))


def run(fn: Callable[[], Awaitable[T] | T]) -> T:
    """Call ``fn`` (awaiting what it returns, if anything), turning the plugin's errors
    into one line on stderr and an exit code."""
    import inspect
    import logging

    import httpx

    from prefect_failure_insights.exceptions import (
        ConfigurationError,
        FailureInsightsError,
        InputError,
        RunNotFailed,
        RunNotFound,
    )

    # prefect-sqlalchemy logs every engine it creates and disposes at INFO: noise on a CLI's stderr.
    logging.getLogger("prefect.SqlAlchemyConnector").setLevel(logging.WARNING)

    async def call() -> T:
        result = fn()
        return await result if inspect.isawaitable(result) else result

    try:
        return asyncio.run(call())
    except (RunNotFound, RunNotFailed, ConfigurationError, InputError) as exc:
        raise fail(str(exc), 2) from None
    except FailureInsightsError as exc:
        raise fail(str(exc), 1) from None
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise fail(
            f"Cannot reach the Prefect API at {api_url()} ({type(exc).__name__}): start it "
            "(`prefect server start`) or point PREFECT_API_URL at it.",
            1,
        ) from None
    except httpx.HTTPStatusError as exc:
        code = exc.response.status_code
        hint = "check PREFECT_API_KEY and its permissions" if code in (401, 403) else "see the server's logs"
        raise fail(f"The Prefect API at {api_url()} answered HTTP {code}: {hint}.", 1) from None
    except httpx.HTTPError as exc:
        raise fail(f"The Prefect API at {api_url()} failed ({type(exc).__name__}): try again.", 1) from None


def with_client(fn: Callable[..., Awaitable[T]]) -> T:
    """``await fn(client)`` with a Prefect client, errors as one line (see `run`)."""

    async def main() -> T:
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            return await fn(client)

    return run(main)


def parse_since(value: str | None, option: str = "--since") -> datetime | None:
    """``24h``, ``7d``, ``30m`` (that long ago) or an ISO date/time (UTC when no zone is
    given); a bad value is reported as a bad ``option``."""
    if not value:
        return None
    m = re.fullmatch(r"(\d+)\s*([mhdw])", value.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n),
                 "w": timedelta(weeks=n)}[unit]
        return datetime.now(timezone.utc) - delta
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} {value!r} is neither a duration like 24h/7d nor an ISO date "
                   "(e.g. 2026-11-30T06:00).", 2) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


async def open_database(settings_block: str) -> Database:
    """The database the settings block names (the schema migrated)."""
    from prefect_failure_insights.blocks.loading import load_database, load_settings

    database = await load_database(await load_settings(settings_block))
    await database.run(lambda engine: None)  # create the engine and migrate, off the event loop
    return database


def output_file(output: Path | str) -> Path:
    """``-o FILE`` checked before any work: a file in a directory that exists. Directories are
    never created (a typo would scatter files) and a directory is refused, each in one line."""
    path = Path(output)
    if path.is_dir():
        raise fail(f"-o {path} is a directory: give a file name (e.g. {path / 'out.txt'}).", 2)
    if not path.parent.is_dir():
        raise fail(f"-o {path}: the directory {path.parent} does not exist; create it first (it is never "
                   "created for you).", 2)
    return path


def write_output(text: str, output: Path | None, *, cells_inert: bool = False) -> None:
    """To stdout, or atomically to ``output`` (never a half-written file), made `inert` (a CSV,
    ``cells_inert``, already is, cell by cell, and keeps its CRLF line ends)."""
    if not cells_inert:
        from prefect_failure_insights.redaction import inert

        text = inert(text)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    output = output_file(output)
    try:
        fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    except OSError as exc:
        raise fail(f"Cannot write {output}: {exc.strerror or exc}.", 1) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    typer.echo(f"Wrote {output}", err=True)
