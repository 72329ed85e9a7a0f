"""The layout keeps its promises: where a change goes is decided by what it is.

* every Prefect task lives in ``tasks/``, every module there defines tasks, each a thin wrapper
  registered under its function's name;
* flows import only tasks (and declarations: defaults, models, exceptions);
* the domain packages never import Prefect's flow engine;
* SQL (SQLAlchemy) only in ``store/``;
* packages depend on each other in one direction only (no import cycle).

Read from the source with `ast`: nothing is imported or run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "prefect_failure_insights"
# The repository's top-level folders are installed as subpackages of the one namespace.
FOLDERS = {"flows": ROOT / "flows", "tasks": ROOT / "tasks", "blocks": ROOT / "blocks",
           "automations": ROOT / "automations"}

# What each part may import from the plugin (besides itself). Lower layers first.
ALLOWED: dict[str, set[str]] = {
    "defaults": set(),
    "exceptions": set(),
    "redaction": set(),
    "models": {"defaults", "exceptions", "redaction"},
    "store": {"defaults", "exceptions", "models"},
    "blocks": {"defaults", "exceptions", "models", "store"},
    "reporting": {"defaults", "exceptions", "models"},
    "evidence": {"defaults", "exceptions", "models", "blocks"},
    "llm": {"defaults", "exceptions", "models", "blocks"},
    "prefect_api": {"defaults", "exceptions", "models", "blocks", "evidence", "reporting"},
    "analysis": {"defaults", "exceptions", "models", "blocks", "evidence", "llm", "store", "prefect_api"},
    "bundles": {"defaults", "exceptions", "models", "blocks", "evidence", "prefect_api", "analysis"},
    "reconcile": {"defaults", "exceptions", "models", "blocks", "store", "prefect_api"},
    "automations": {"defaults", "exceptions", "models"},
    "tasks": {"defaults", "exceptions", "models", "blocks", "evidence", "llm", "store", "prefect_api", "analysis",
              "reporting", "reconcile"},
    "flows": {"defaults", "exceptions", "models", "tasks"},
}
for _part_name, _allowed in ALLOWED.items():  # secrets are removed everywhere text enters
    if _part_name not in ("defaults", "exceptions", "redaction", "flows"):
        _allowed.add("redaction")
DOMAIN = ("models", "store", "reporting", "evidence", "llm", "prefect_api", "analysis", "bundles", "redaction",
          "reconcile")
FLOW_ENGINE = ("prefect.flows", "prefect.tasks", "prefect.flow_engine", "prefect.task_engine", "prefect.runtime",
               "prefect.context", "prefect.logging")


def _modules() -> dict[str, Path]:
    """Module name -> file, as installed."""
    out: dict[str, Path] = {}
    for path in (ROOT / PACKAGE).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(p for p in parts if p != "__init__")] = path
    for folder, directory in FOLDERS.items():
        for path in directory.rglob("*.py"):
            parts = (PACKAGE, folder, *path.relative_to(directory).with_suffix("").parts)
            out[".".join(p for p in parts if p != "__init__")] = path
    return out


MODULES = _modules()


def _part(module: str) -> str:
    """``prefect_failure_insights.store.tables`` -> ``store``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path, *, runtime_only: bool = False, top_level_only: bool = False) -> list[str]:
    """Modules ``path`` imports (``TYPE_CHECKING`` blocks left out with ``runtime_only``)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = []
    for node in nodes:
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
            out += [f"{node.module}.{a.name}" for a in node.names]
    return out


def _tasks(path: Path) -> list[ast.AsyncFunctionDef | ast.FunctionDef]:
    """Functions decorated with Prefect's ``task`` (under any alias)."""
    tree = ast.parse(path.read_text())
    names = {"prefect.task"} | {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                                and node.module == "prefect" for a in node.names if a.name == "task"}
    return [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and any(ast.unparse(d).split("(")[0] in names for d in node.decorator_list)]


#: Flows and tasks that stand for the user's own code: the demo's example pipeline, test fixtures.
USER_SIDE = ("demo", "testing")


def test_every_task_is_in_tasks_and_every_tasks_module_has_tasks() -> None:
    for module, path in MODULES.items():
        found = _tasks(path)
        if _part(module) == "tasks" and not module.endswith(".tasks"):
            assert found, f"{module} is in tasks/ but defines no task"
        elif _part(module) not in USER_SIDE:
            assert not found, f"{module} defines tasks outside tasks/: {[f.name for f in found]}"


@pytest.mark.parametrize("module", [m for m in MODULES if _part(m) == "tasks" and not m.endswith(".tasks")])
def test_tasks_are_thin_and_named_after_their_function(module: str) -> None:
    for fn in _tasks(MODULES[module]):
        decorator = next(d for d in fn.decorator_list if ast.unparse(d).startswith("task("))
        name = next((k.value.value for k in getattr(decorator, "keywords", []) if k.arg == "name"), None)
        assert name == fn.name.replace("_", "-"), f"{module}.{fn.name} is registered as {name!r}"
        body = fn.body[1:] if isinstance(fn.body[0], ast.Expr) else fn.body  # without the docstring
        lines = body[-1].end_lineno - body[0].lineno + 1
        assert lines <= 16, f"{module}.{fn.name} has {lines} lines: move the logic into its domain function"


@pytest.mark.parametrize("module", list(MODULES))
def test_dependencies_go_one_way(module: str) -> None:
    part = _part(module)
    if part not in ALLOWED:
        return  # the application layers (cli, serve, demo, testing) may use everything
    for imported in _imports(MODULES[module], runtime_only=True):
        if imported.startswith(PACKAGE + ".") and _part(imported) not in (part, "__version__"):
            assert _part(imported) in ALLOWED[part], f"{module} ({part}) imports {imported}"


@pytest.mark.parametrize("module", [m for m in MODULES if _part(m) in DOMAIN])
def test_the_domain_never_imports_the_flow_engine(module: str) -> None:
    for imported in _imports(MODULES[module]):
        assert not imported.startswith(FLOW_ENGINE), f"{module} imports {imported}"
        assert imported not in ("prefect.flow", "prefect.task", "prefect.get_run_logger"), f"{module}: {imported}"


def test_sql_only_in_store() -> None:
    for module, path in MODULES.items():
        if _part(module) in ("store", "testing"):
            continue
        sql = [i for i in _imports(path, runtime_only=True) if i.split(".")[0] == "sqlalchemy"]
        assert not sql, f"{module} imports {sql}: SQL belongs in prefect_failure_insights.store"


def test_no_import_cycle() -> None:
    graph = {m: {i for i in _imports(p, top_level_only=True) if i in MODULES and i != m} for m, p in MODULES.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_the_test_modules_mirror_the_package() -> None:
    """Every test folder is named after a part of the package (or is one of the tiers)."""
    parts = {_part(m) for m in MODULES} | {"e2e", "live", "fixtures"}
    for folder in (ROOT / "tests").iterdir():
        if folder.is_dir() and not folder.name.startswith(("_", ".")):
            assert folder.name in parts, f"tests/{folder.name} mirrors no part of the package"
