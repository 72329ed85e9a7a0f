"""The layout keeps its promises: where a change goes is decided by what it is.

* every Prefect task lives in ``tasks/``, every module there defines tasks, each a thin wrapper
  registered under its function's name;
* flows import only tasks (and declarations: defaults, models, exceptions, the context of a
  summary in progress), and neither flows nor tasks hide state in ``nonlocal``;
* the domain packages never import Prefect's flow engine;
* SQL (SQLAlchemy) only in ``store/``;
* packages depend on each other in one direction only, and no module imports itself back,
  not even lazily from inside a function (no import cycle);
* a public function with more than three parameters takes the rest by keyword only (command-line
  commands and flows aside: their parameters are named by typer and Prefect);
* no mutable module-level state: no ``global``, no module-level lock, context variable, counter
  or instance of a stateful class of the plugin, no module-level container changed after import,
  and caches only on functions without arguments (a lazily computed constant).

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
    # reporting: an answer is checked to render before it is cached (`compose.undeliverable`)
    "analysis": {"defaults", "exceptions", "models", "blocks", "evidence", "llm", "store", "prefect_api", "reporting"},
    "bundles": {"defaults", "exceptions", "models", "blocks", "evidence", "prefect_api", "analysis"},
    "lifecycle": {"defaults", "exceptions", "models", "blocks", "store", "prefect_api", "analysis"},
    "automations": {"defaults", "exceptions", "models"},
    "tasks": {"defaults", "exceptions", "models", "blocks", "evidence", "llm", "store", "prefect_api", "analysis",
              "reporting", "lifecycle"},
    "flows": {"defaults", "exceptions", "models", "tasks"},
}
#: Modules of other parts that a flow may import: declarations it builds, not logic it runs.
FLOW_DECLARATIONS = {"prefect_failure_insights.lifecycle.context"}
for _part_name, _allowed in ALLOWED.items():  # secrets are removed everywhere text enters
    if _part_name not in ("defaults", "exceptions", "redaction", "flows"):
        _allowed.add("redaction")
DOMAIN = ("models", "store", "reporting", "evidence", "llm", "prefect_api", "analysis", "bundles", "redaction",
          "lifecycle")
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
        if part == "flows" and imported.startswith(tuple(FLOW_DECLARATIONS)):
            continue
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
    """Lazy imports (inside a function) count: a cycle hidden in a function is still a cycle."""
    graph = {m: {i for i in _imports(p, runtime_only=True) if i in MODULES and i != m} for m, p in MODULES.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


# -- module-level state ------------------------------------------------------------------------

#: Constructors of objects that hold state.
STATEFUL = {"ContextVar", "Lock", "RLock", "Event", "Semaphore", "BoundedSemaphore", "Condition", "Queue",
            "CapacityLimiter", "defaultdict", "Counter", "deque", "OrderedDict", "WeakValueDictionary",
            "WeakKeyDictionary", "local"}
#: Methods that change a list, dict or set in place.
MUTATORS = {"append", "extend", "insert", "add", "update", "pop", "popitem", "clear", "remove", "discard",
            "setdefault", "sort", "reverse", "__setitem__", "__delitem__", "difference_update",
            "intersection_update", "symmetric_difference_update"}
#: Module-level containers filled at import and read-only after, with the reason.
FILLED_AT_IMPORT = {
    ("prefect_failure_insights.store.migrations", "MIGRATIONS"): "the @migration registry, as simonw/llm keeps it",
}


def _module_names(tree: ast.Module) -> dict[str, ast.expr]:
    """Names bound at module level (top level, or under a top-level ``if``/``try``) -> their value."""
    out: dict[str, ast.expr] = {}
    nodes = list(tree.body)
    while nodes:
        node = nodes.pop(0)
        if isinstance(node, (ast.If, ast.Try)):
            nodes += node.body + node.orelse + getattr(node, "finalbody", [])
        elif isinstance(node, ast.Assign) and node.value is not None:
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        out[name.id] = node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name):
            out[node.target.id] = node.value
    return out


def _is_container(value: ast.expr) -> bool:
    if isinstance(value, (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)):
        return True
    return isinstance(value, ast.Call) and ast.unparse(value.func).split(".")[-1] in (
        {"dict", "list", "set"} | STATEFUL)


def _plugin_classes() -> dict[str, bool]:
    """Every class of the plugin -> whether its instances can change (not a frozen dataclass, an
    Enum, an exception, a Protocol or a NamedTuple)."""
    out: dict[str, bool] = {}
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = " ".join(ast.unparse(b) for b in node.bases)
                frozen = any("frozen=True" in ast.unparse(d) for d in node.decorator_list)
                inert = frozen or any(word in bases for word in ("Enum", "Exception", "Error", "Protocol",
                                                                 "NamedTuple", "TypedDict"))
                out[node.name] = not inert
    return out


CLASSES = _plugin_classes()
CONTAINERS = {(module, name) for module, path in MODULES.items()
              for name, value in _module_names(ast.parse(path.read_text())).items()
              if _is_container(value) and name != "__all__"}


@pytest.mark.parametrize("module", list(MODULES))
def test_no_mutable_module_state(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text())
    for name, value in _module_names(tree).items():
        if isinstance(value, ast.Call):
            made = ast.unparse(value.func).split(".")[-1]
            assert made not in STATEFUL or (module, name) in FILLED_AT_IMPORT, \
                f"{module}.{name} = {made}(...): state belongs to an object its owner passes in"
            assert not CLASSES.get(made), f"{module}.{name} is a module-level {made}: pass one in instead"
    # What this module can reach of the module-level containers: its own, and those it imports by name.
    reachable = {name: (module, name) for m, name in CONTAINERS if m == module}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if (node.module, alias.name) in CONTAINERS:
                    reachable[alias.asname or alias.name] = (node.module, alias.name)
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for deco in fn.decorator_list:
            if ast.unparse(deco).split("(")[0].split(".")[-1] in ("cache", "lru_cache"):
                params = fn.args.args + fn.args.posonlyargs + fn.args.kwonlyargs
                assert not params and not fn.args.vararg and not fn.args.kwarg, \
                    f"{module}.{fn.name} caches by argument: a module-level cache is state"
        for node in ast.walk(fn):
            assert not isinstance(node, ast.Global), f"{module}.{fn.name} rebinds module state (global)"
            changed = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Name) and node.func.attr in MUTATORS:
                changed = node.func.value.id
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                changed = next((t.value.id for t in targets if isinstance(t, ast.Subscript)
                                and isinstance(t.value, ast.Name)), None)
            if changed in reachable and reachable[changed] not in FILLED_AT_IMPORT:
                raise AssertionError(f"{module}.{fn.name} changes the module-level {changed}: keep state in "
                                     "an object its owner passes in")


@pytest.mark.parametrize("module", [m for m in MODULES if _part(m) not in ("cli", "flows", "demo", "testing")])
def test_parameters_past_the_third_are_keyword_only(module: str) -> None:
    """``build_evidence(failed, lines, budget, redactor, None, [], [], "E")`` says nothing of what
    ``None, [], [], "E"`` are: past three, arguments are named."""

    def functions(body: list[ast.stmt]):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield node
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                yield from functions(node.body)

    for fn in functions(ast.parse(MODULES[module].read_text()).body):
        if fn.name.startswith("_") and fn.name != "__init__":
            continue
        positional = [a.arg for a in fn.args.posonlyargs + fn.args.args if a.arg not in ("self", "cls")]
        assert len(positional) <= 3 or fn.args.vararg, \
            f"{module}.{fn.name}({', '.join(positional)}): make the parameters after the third keyword-only"


@pytest.mark.parametrize("module", [m for m in MODULES if _part(m) in ("flows", "tasks")])
def test_flows_and_tasks_keep_no_state_in_closures(module: str) -> None:
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        assert not isinstance(node, ast.Nonlocal), f"{module}: nonlocal {node.names}: return the value instead"


def test_the_test_modules_mirror_the_package() -> None:
    """Every test folder is named after a part of the package (or is one of the tiers)."""
    parts = {_part(m) for m in MODULES} | {"e2e", "live", "fixtures"}
    for folder in (ROOT / "tests").iterdir():
        if folder.is_dir() and not folder.name.startswith(("_", ".")):
            assert folder.name in parts, f"tests/{folder.name} mirrors no part of the package"


def test_every_package_is_installed() -> None:
    """A wheel holds only the packages pyproject.toml lists: a package missing there works in the
    editable install the suite uses and is absent for every user."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "prefect_failure_insights").rglob("__init__.py")}
    assert found - listed == set()
