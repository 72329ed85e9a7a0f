"""What `failure-insights serve` runs from a failure event to a summary imports without `prefect.server`.

The `prefect-client` package is Prefect without its server: a `serve` process or a worker that
only talks to a Prefect API may have it instead of `prefect`. So nothing on serve's request path
(the start at the event, the automation's trigger evaluated on the client, every Prefect API
call) may import `prefect.server`, where `prefect` would bring it along unnoticed.

    python tests/client_smoke.py                 # import them; exit 1 if prefect.server came along
    python tests/client_smoke.py MODULE ...      # and these modules too
    python tests/client_smoke.py --require-client  # and fail unless this is a prefect-client venv
    python tests/client_smoke.py --requirements  # what a prefect-client venv needs beside the plugin

`make test-client` runs it in a venv holding `prefect-client` (not `prefect`);
`tests/test_client_imports.py` runs it in the test venv, so a regression fails `make test`.
Standard library only: the prefect-client venv has no pytest.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import pkgutil
import re
import sys

PLUGIN = "prefect-failure-insights"

#: serve's request path: the command, the service, the start at the event, the trigger, and
#: every module of `prefect_api` (the package is walked, so a new module is covered at once).
MODULES = (
    "prefect_failure_insights.cli",
    "prefect_failure_insights.serve.service",
    "prefect_failure_insights.serve.executor",
    "prefect_failure_insights.serve.at_once",
    "prefect_failure_insights.serve.stream",
    "prefect_failure_insights.automations.failure_trigger",
    "prefect_failure_insights.flows.on_failure_summary",
    "prefect_failure_insights.prefect_api",
)
#: Prefect modules the request path imports lazily, inside functions.
LAZY_PREFECT = ("prefect.events.clients", "prefect.events.filters", "prefect.deployments", "prefect.flow_engine")

#: Requirements a prefect-client venv does not take from the plugin's metadata: `prefect` itself
#: (prefect-client stands in for it) and fastapi (pinned only for Prefect's server).
SERVER_ONLY = {"prefect", "fastapi"}
#: Integrations that require `prefect` (the whole of it): installed with --no-deps, their other
#: requirements listed here instead.
NEEDS_PREFECT = {"prefect-sqlalchemy"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _runtime(distribution: str) -> list[str]:
    """A distribution's requirements without extras (its metadata's ``Requires-Dist``)."""
    return [r for r in importlib.metadata.requires(distribution) or [] if "extra ==" not in r]


def requirements() -> list[str]:
    """What to install beside prefect-client: the plugin's requirements minus `prefect` and the
    server's, the integrations' own requirements minus `prefect`. Needs the plugin and the
    integrations installed with --no-deps first."""
    wanted = [r for r in _runtime(PLUGIN) if _name(r) not in SERVER_ONLY | NEEDS_PREFECT]
    for integration in sorted(NEEDS_PREFECT):
        wanted += [r for r in _runtime(integration) if _name(r) not in SERVER_ONLY]
    return wanted


def integrations() -> list[str]:
    """The plugin's requirements on integrations that require `prefect`, to install with --no-deps."""
    return [r for r in _runtime(PLUGIN) if _name(r) in NEEDS_PREFECT]


def modules() -> list[str]:
    """MODULES with every submodule of the packages among them, then the lazy Prefect imports."""
    names: list[str] = []
    for name in MODULES:
        module = importlib.import_module(name)
        names.append(name)
        if hasattr(module, "__path__") and name.endswith(".prefect_api"):
            names += [f"{name}.{info.name}" for info in pkgutil.iter_modules(module.__path__)]
    return names + list(LAZY_PREFECT)


def server_modules() -> list[str]:
    return sorted(m for m in sys.modules if m == "prefect.server" or m.startswith("prefect.server."))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("extra", nargs="*", help="more modules to import")
    parser.add_argument("--requirements", action="store_true",
                        help="print what to install beside prefect-client, one per line")
    parser.add_argument("--integrations", action="store_true",
                        help="print the integrations to install with --no-deps, one per line")
    parser.add_argument("--require-client", action="store_true",
                        help="fail unless prefect-client, and not prefect, is installed")
    args = parser.parse_args(argv)
    if args.requirements or args.integrations:
        print("\n".join(requirements() if args.requirements else integrations()))
        return 0
    if args.require_client and not _prefect().startswith("prefect-client "):
        print(f"FAIL: this venv has {_prefect()}, not prefect-client: something required `prefect`")
        return 1

    names = [*modules(), *args.extra]
    for name in names:
        importlib.import_module(name)
        leaked = server_modules()
        if leaked:
            print(f"FAIL: importing {name} imported {len(leaked)} prefect.server modules: "
                  f"{', '.join(leaked[:5])}{' ...' if len(leaked) > 5 else ''}")
            return 1
    print(f"OK: {len(names)} modules imported with {_prefect()}, no prefect.server module")
    return 0


def _prefect() -> str:
    """Which Prefect distribution is installed, and its version."""
    for distribution in ("prefect", "prefect-client"):
        try:
            return f"{distribution} {importlib.metadata.version(distribution)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "no Prefect distribution"


if __name__ == "__main__":
    sys.exit(main())
