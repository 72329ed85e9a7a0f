"""The values of the workspace's Secret blocks, for exact-match redaction."""

from __future__ import annotations

from prefect.client.orchestration import PrefectClient

from prefect_failure_insights.prefect_api.paging import read_all


async def load_secret_values(client: PrefectClient) -> list[str]:
    """The values of the workspace's Secret blocks, where the API returns them.

    A self-hosted server returns them to any client; Prefect Cloud only with the
    permission to read secrets. Nested values (a Secret holding JSON) are flattened.
    """
    documents = await read_all(lambda offset, size: client.read_block_documents_by_type(
        "secret", offset=offset, limit=size, include_secrets=True))
    values: list[str] = []

    def collect(value: object) -> None:
        if isinstance(value, str):
            values.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                collect(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                collect(v)

    for document in documents:
        collect((document.data or {}).get("value"))
    return values
