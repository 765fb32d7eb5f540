"""Deliver one rendered email: through the Resend SDK (async client), or to the dev outbox.

Every failure is classified for the job: `TransientSendError` (network, timeout, 408, 409 while
the same idempotency key is in flight, 429, 5xx, and 401/403, which are deployment-wide key or
domain problems an operator fixes, not a property of the message) is retried with backoff;
`PermanentSendError` (other 4xx, e.g. 422 validation) is not.

The SDK is configured through its module globals (`resend.api_key`, `resend.api_url`,
`resend.default_async_http_client`): one Resend configuration per process, which is what a
worker is. The HTTP client is ours only to pool connections and apply the send timeout; the
request, headers (including `Idempotency-Key`) and error mapping are the SDK's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import resend
from resend.exceptions import ResendError

from shared.settings import Settings

RESEND_MODE = "resend"
OUTBOX_MODE = "outbox"


@dataclass(frozen=True)
class OutgoingEmail:
    """A rendered message ready to hand to a provider."""

    message_id: str
    idempotency_key: str
    template: str
    sender: str
    to: str
    subject: str
    text: str
    html: str


class SendError(Exception):
    """A failed delivery attempt; `status` is the HTTP status (0 when no response arrived)."""

    def __init__(
        self, message: str, *, status: int = 0, kind: str = "error", retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.retry_after = retry_after


class TransientSendError(SendError):
    """Worth retrying later: the same message may well succeed."""


class PermanentSendError(SendError):
    """Retrying cannot help: the provider rejected this message."""


class EmailSender(Protocol):
    mode: str

    async def start(self) -> None: ...

    async def send(self, email: OutgoingEmail) -> str:
        """Deliver and return the provider's message id; raise a `SendError` subclass."""
        ...

    async def close(self) -> None: ...


class PooledHTTPXClient(resend.AsyncHTTPClient):
    """The SDK's async transport over one pooled `httpx.AsyncClient` (the SDK's default opens a
    new connection per request) with the configured timeout. Network errors propagate; the SDK
    turns them into `ResendError(error_type="HttpClientError")`."""

    def __init__(self, timeout: float, max_connections: int) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        json: dict[str, object] | list[object] | None = None,
        files: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
    ) -> tuple[bytes, int, Mapping[str, str]]:
        if files is not None:
            response = await self._client.request(method, url, headers=headers, files=files, data=data)
        else:
            response = await self._client.request(
                method, url, headers=headers, json=json if data is None else None, data=data
            )
        return response.content, response.status_code, response.headers

    async def aclose(self) -> None:
        await self._client.aclose()


def _status(error: ResendError) -> int:
    try:
        return int(str(error.code))
    except ValueError:
        return 500


def _retry_after(error: ResendError) -> float | None:
    headers = {k.lower(): v for k, v in (error.headers or {}).items()}
    value = headers.get("retry-after")
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return max(float(value), 0.0)
    return None


def classify(error: ResendError) -> SendError:
    """Map an SDK error to transient or permanent, keeping its status and type (never a body)."""
    status = _status(error)
    kind = str(error.error_type or "error")
    message = f"resend {status} {kind}: {str(error.message)[:300]}"
    if kind == "HttpClientError":  # connection refused, reset, timeout: no usable response
        return TransientSendError(message, status=0, kind="network")
    if status in (401, 403, 408, 409, 425, 429) or status >= 500:
        return TransientSendError(message, status=status, kind=kind, retry_after=_retry_after(error))
    return PermanentSendError(message, status=status, kind=kind)


class ResendSender:
    """Send through `resend.Emails.send_async` with the job's idempotency key."""

    mode = RESEND_MODE

    def __init__(self, settings: Settings, *, max_connections: int | None = None) -> None:
        if settings.resend_api_key is None:
            raise ValueError("RESEND_API_KEY is required to send through Resend")
        self._api_key = settings.resend_api_key.get_secret_value()
        self._api_url = str(settings.resend_api_url).rstrip("/")
        self._timeout = settings.email_send_timeout_seconds
        self._max_connections = max_connections or settings.worker_concurrency
        self._client: PooledHTTPXClient | None = None

    async def start(self) -> None:
        resend.api_key = self._api_key
        resend.api_url = self._api_url
        self._client = PooledHTTPXClient(self._timeout, self._max_connections)
        resend.default_async_http_client = self._client

    async def send(self, email: OutgoingEmail) -> str:
        params: resend.Emails.SendParams = {
            "from": email.sender,
            "to": [email.to],
            "subject": email.subject,
            "html": email.html,
            "text": email.text,
            "tags": [{"name": "template", "value": email.template}],
        }
        options: resend.Emails.SendOptions = {"idempotency_key": email.idempotency_key}
        try:
            response = await resend.Emails.send_async(params, options)
        except ResendError as error:
            raise classify(error) from None
        except (httpx.HTTPError, OSError, TimeoutError) as error:  # defensive: the SDK wraps these
            raise TransientSendError(f"network: {type(error).__name__}", kind="network") from None
        provider_id = response.get("id") if isinstance(response, Mapping) else None
        if not provider_id:
            raise TransientSendError("resend answered without a message id", status=200, kind="no_id")
        return str(provider_id)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            if resend.default_async_http_client is self._client:
                resend.default_async_http_client = resend._auto_async_http_client
            self._client = None
