"""Credentials for reading Airbyte job logs (Airbyte's configuration API, OSS or Enterprise)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

if TYPE_CHECKING:
    import httpx


class AirbyteLogCredentials(Block):
    """
    Where and how to read Airbyte job logs, so that a failed Airbyte sync task's
    summary can include the failed Airbyte attempt's own logs.

    Args:
        server_url: Base URL of Airbyte's API, ending in ``/api``.
        username: Basic-auth user (Airbyte OSS defaults to ``airbyte``).
        password: Basic-auth password.
        api_token: Bearer token, instead of basic auth.
        timeout: Seconds to wait for one request.

    Examples:
        ```python
        from prefect_failure_insights.blocks import AirbyteLogCredentials

        AirbyteLogCredentials(
            server_url="http://airbyte:8000/api", username="airbyte", password="..."
        ).save("airbyte")
        airbyte = AirbyteLogCredentials.load("BLOCK_NAME")
        ```
    """

    _block_type_name = "Failure Insights Airbyte Logs"
    _block_type_slug = "failure-insights-airbyte"
    _documentation_url = (
        "https://github.com/prefect-failure-insights/prefect-failure-insights/blob/main/docs/guides/log-sources.md"
    )
    _description = "Reads failed Airbyte attempts' logs for failure summaries."

    server_url: str = Field(
        default="http://localhost:8000/api", description="Base URL of Airbyte's API, ending in /api."
    )
    username: str | None = Field(default=None, description="Basic-auth user, e.g. airbyte.")
    password: SecretStr | None = Field(default=None, description="Basic-auth password.")
    api_token: SecretStr | None = Field(default=None, description="Bearer token, instead of basic auth.")
    timeout: float = Field(default=20.0, gt=0, description="Seconds to wait for one request.")

    def get_client(self) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` for the API, authenticated."""
        import httpx

        auth = None
        headers = {"Accept": "application/json"}
        if self.api_token is not None:
            headers["Authorization"] = f"Bearer {self.api_token.get_secret_value()}"
        elif self.username:
            auth = httpx.BasicAuth(self.username, self.password.get_secret_value() if self.password else "")
        return httpx.AsyncClient(
            base_url=self.server_url.rstrip("/"), auth=auth, headers=headers, timeout=self.timeout
        )
