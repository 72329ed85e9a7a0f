"""Models to rows and back, by the ``info={"field": ...}`` each column carries (see `migrations`).

The one place where a model meets a row: a column names the dotted path of the model
field it holds, so adding a field to a model means adding a column that names it (a new
migration), and nothing else. ``json`` columns hold the field as JSON text; ``copy``
columns repeat a part of a JSON column for SQL users and are written, never read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Column, Table

from prefect_failure_insights.models.common import utc

M = TypeVar("M", bound=BaseModel)


def mapped(table: Table) -> list[tuple[Column, dict]]:
    """The table's columns that hold model fields, with their mapping."""
    return [(c, c.info) for c in table.columns if c.info.get("field")]


def _get(model: Any, path: str) -> Any:
    value = model
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return utc(value)
    return value


def to_row(model: BaseModel, table: Table, root: str | None = None) -> dict[str, Any]:
    """The column values of ``model``; with ``root``, of the part of a larger model it is
    (``to_row(run, summaries, root="run")`` writes only the run's columns)."""
    out: dict[str, Any] = {}
    for column, info in mapped(table):
        path = info["field"][0]
        if root is not None:
            if not path.startswith(root + "."):
                continue
            path = path[len(root) + 1:]
        value = _plain(_get(model, path))
        out[column.name] = json.dumps(value) if info["json"] and value is not None else value
    return out


def from_row(row: Mapping[str, Any], table: Table, model: type[M]) -> M:
    """The model a row holds. Missing (NULL) values take the model's defaults."""
    data: dict[str, Any] = {}
    for column, info in mapped(table):
        value = row.get(column.name)
        if info["copy"] or value is None:
            continue
        if info["json"]:
            value = json.loads(value)
        elif isinstance(value, datetime):
            value = utc(value)
        for path in info["field"]:
            *parents, leaf = path.split(".")
            node = data
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
    return model.model_validate(data)


def field_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every leaf field of ``model`` as a dotted path (nested models are walked)."""
    out: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out |= field_paths(annotation, path + ".")
        else:
            out.add(path)
    return out
