"""Installing an automation idempotently: one per name, created, updated in place or left as is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.events.schemas.automations import AutomationCore


@dataclass(frozen=True)
class InstallResult:
    automation_id: UUID
    action: str  # "created" | "updated" | "unchanged"


def same(existing: AutomationCore, wanted: AutomationCore) -> bool:
    keys = {"name", "description", "enabled", "trigger", "actions"}
    return (_unordered(existing.model_dump(mode="json", include=keys))
            == _unordered(wanted.model_dump(mode="json", include=keys)))


def _unordered(value: Any) -> Any:
    """Lists of strings sorted: a trigger's ``expect`` is a set, dumped in a per-process order."""
    if isinstance(value, dict):
        return {k: _unordered(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_unordered(v) for v in value]
        return sorted(items) if all(isinstance(v, str) for v in items) else items
    return value


async def upsert(client: PrefectClient, wanted: AutomationCore) -> InstallResult:
    """Create ``wanted``, or update the automation of its name in place; running it twice changes
    nothing. Duplicates of the name (left by earlier manual installs) are removed."""
    existing = await client.read_automations_by_name(wanted.name)
    if not existing:
        return InstallResult(await client.create_automation(wanted), "created")
    keep, *duplicates = existing
    for extra in duplicates:
        await client.delete_automation(extra.id)
    if same(keep, wanted):
        return InstallResult(keep.id, "unchanged")
    await client.update_automation(keep.id, wanted)
    return InstallResult(keep.id, "updated")


async def delete_named(client: PrefectClient, name: str) -> int:
    """Delete every automation called ``name``; how many there were."""
    found = await client.read_automations_by_name(name)
    for automation in found:
        await client.delete_automation(automation.id)
    return len(found)
