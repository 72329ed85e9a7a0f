"""The documentation: a README short enough to read, and no link that leads nowhere.

`make test` also builds the docs site with `mkdocs build --strict`, which checks the links and
anchors between the pages of docs/. These tests need no mkdocs, and they also cover the README,
which is not part of the site: a page moved or renamed under docs/ breaks the README's links too.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 250

PAGES = [README, *sorted(DOCS.rglob("*.md"))]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[ \t]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
_INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose(text: str) -> str:
    """The text without fenced code blocks and code spans: a link inside code is an example."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def _links(page: Path) -> list[str]:
    prose = _prose(page.read_text(encoding="utf-8"))
    return _INLINE_LINK.findall(prose) + _REFERENCE_LINK.findall(prose)


def _slugs(heading: str) -> set[str]:
    """A heading's anchor as GitHub makes it and as MkDocs (Python-Markdown's toc) makes it."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip()
    github = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    mkdocs = re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", ascii_text).strip().lower())
    return {github, mkdocs}


def _anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug for heading in _HEADING.findall(text) for slug in _slugs(heading)}


def test_readme_is_short() -> None:
    """The README says what the plugin is and how to start; the rest lives in docs/ (issue 27:
    a 1,115-line README buried the quick start and the prerequisites)."""
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines, more than {README_MAX_LINES}: move the detail into a page under docs/"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    """Every relative link points to a file that exists, and a link to a heading of a markdown
    file to a heading it has (the README's links are checked by nothing else)."""
    broken = []
    for target in _links(page):
        if _SCHEME.match(target) or target.startswith("/"):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else resolved}")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading with the anchor #{anchor}")
    assert not broken, f"{page.relative_to(ROOT)} has broken links:\n" + "\n".join(broken)


def test_links_are_found() -> None:
    """The link finder itself: the README links to the docs, so finding none means it is broken."""
    assert any(link.startswith("docs/") for link in _links(README))
    assert _links(DOCS / "index.md")


def test_every_table_column_is_documented() -> None:
    """docs/reference/tables.md lists every column the migrations create: a new migration that
    adds one fails here until the page says what it holds."""
    from prefect_failure_insights.store.migrations import current_tables

    page = (DOCS / "reference" / "tables.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## `(\w+)`\n(.*?)(?=^## |\Z)", page, re.M | re.S))
    missing = []
    for name, table in current_tables().tables.items():
        section = sections.get(name)
        if section is None:
            missing.append(f"table {name}")
            continue
        missing += [f"{name}.{column.name}" for column in table.columns if f"| `{column.name}` |" not in section]
    assert not missing, "docs/reference/tables.md does not list: " + ", ".join(missing)


def test_every_setting_is_documented() -> None:
    """docs/reference/settings.md has a row for every field of the settings block."""
    from prefect_failure_insights.blocks import FailureInsightsSettings

    page = (DOCS / "reference" / "settings.md").read_text(encoding="utf-8")
    missing = [name for name in FailureInsightsSettings.model_fields if f"`{name}`" not in page]
    assert not missing, "docs/reference/settings.md does not document: " + ", ".join(missing)


def _module_line(path: Path) -> str:
    """A module's row in the layout map: the first sentence of its docstring."""
    doc = " ".join((ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "").split("\n\n")[0].split())
    first = re.match(r"(.+?[.!?])(\s|$)", doc)
    return (first.group(1) if first else doc).rstrip(".").replace("``", "`").replace("|", "\\|")


def test_layout_map_lists_every_module() -> None:
    """docs/development.md maps every module, and no module that is gone (issue 27: the README's
    layout map was out of date)."""
    page = (DOCS / "development.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `((?:flows|tasks|blocks|automations|prefect_failure_insights)/[^`]+\.py)` \|", page, re.M))
    modules = {
        str(path.relative_to(ROOT)): path
        for root in ("flows", "tasks", "blocks", "automations", "prefect_failure_insights")
        for path in sorted((ROOT / root).rglob("*.py"))
        if path.name != "__init__.py" or _module_line(path)
    }
    missing = [f"| `{name}` | {_module_line(path)} |" for name, path in modules.items() if name not in listed]
    gone = sorted(listed - set(modules))
    assert not missing and not gone, (
        "docs/development.md's layout map is out of date.\nAdd:\n" + "\n".join(missing) + "\nRemove: " + ", ".join(gone)
    )
