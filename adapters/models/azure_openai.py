"""Azure OpenAI: the openai SDK's ``AzureOpenAI`` client, by deployment and api-version.

Requests go to ``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…``;
everything else — messages, tool calls, usage, which statuses are transient — is the Chat
Completions adapter's. Credentials: with no ``api_key_secret``, an Entra ID token for
Cognitive Services from ``azure-identity`` (on Azure Functions, the app's managed identity;
the account grants it *Cognitive Services OpenAI User*); with one, that key from the
SecretStore.
"""

from __future__ import annotations

from typing import Any

from agentfn.adapters.models.openai_chat import OpenAIChatModel
from agentfn.errors import ModelError, TransientModelError

TOKEN_SCOPE = "https://cognitiveservices.azure.com/.default"


class AzureOpenAIChatModel(OpenAIChatModel):
    """A ``Model`` backed by an Azure OpenAI deployment."""

    def __init__(
        self,
        deployment: str,
        *,
        endpoint: str,
        api_version: str,
        api_key: str = "",
        timeout_s: float = 60.0,
        temperature: float | None = None,
        credential: Any = None,
    ) -> None:
        self.api_version = api_version
        self._credential = credential
        super().__init__(
            deployment,
            api_key=api_key,
            base_url=endpoint,
            timeout_s=timeout_s,
            temperature=temperature,
        )

    def __repr__(self) -> str:
        return f"AzureOpenAIChatModel(deployment={self.name!r}, endpoint={self.base_url!r})"

    def _connect(self, openai: Any) -> Any:
        auth: dict[str, Any]
        if self._api_key:
            auth = {"api_key": self._api_key}
        else:  # lazy: azure-identity is loaded only by a model that uses the identity
            from azure.identity import get_bearer_token_provider

            from agentfn.adapters.azure import default_credential

            credential = self._credential or default_credential()
            auth = {"azure_ad_token_provider": get_bearer_token_provider(credential, TOKEN_SCOPE)}
        return openai.AzureOpenAI(
            azure_endpoint=self.base_url,
            api_version=self.api_version,
            timeout=self.timeout_s,
            max_retries=0,
            **auth,
        )

    def _failures(self) -> tuple[type[Exception], ...]:
        if self._api_key:
            return super()._failures()
        from azure.core.exceptions import ClientAuthenticationError

        return (*super()._failures(), ClientAuthenticationError)

    def _map_error(self, exc: Exception) -> ModelError:
        from azure.core.exceptions import ClientAuthenticationError

        if isinstance(exc, ClientAuthenticationError):
            # What the identity endpoint said (or that no credential applies here); never a
            # secret. Only its own throttling or outage may pass; a refusal will not.
            text = f"model {self.name!r}: no Entra ID token for Azure OpenAI: {exc.message}"
            status = (exc.response.status_code or 0) if exc.response is not None else 0
            return TransientModelError(text) if status == 429 or status >= 500 else ModelError(text)
        return super()._map_error(exc)
