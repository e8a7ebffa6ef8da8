"""What every capability implementation gets and gives back.

A capability is a function `run(ctx, token, data) -> StepResult`: `data` is its input,
already validated by the catalog schema; `token` is the connection's access token or API
key as a Secret (None for Hapex's own LLM, whose key is in ctx.llm). It calls its
provider through `ctx.http`, which adds the timeout, the CA bundle and the error mapping.
It returns its output (kept in memory for later steps, never logged) and metadata only:
counts, provider calls and LLM usage for cost events.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests

from agent_service.runs.prices import DEFAULT_LLM_MODEL
from shared.catalog import Provider
from shared.secret import Secret

DEFAULT_TIMEOUT = (5.0, 30.0)


class StepFailed(Exception):
    """A step's failure as its run records it: an error class and a safe message, never on the wire.

    Not a HapexError: it has no HTTP status, and its error classes are the run records' own
    vocabulary (stored in runs and run_steps, counted in the admin reports), which may share a
    word with an API error's name (provider_unavailable) for the same condition.
    """

    error_class = "step_failed"
    safe_message = "The step could not complete."
    transient = False

    def __init__(self, safe_message: str | None = None, *, retry_after: float | None = None,
                 llm_usage: list[LLMUsage] | None = None) -> None:
        if safe_message is not None:
            self.safe_message = safe_message
        self.retry_after = retry_after
        # Tokens already billed before the step failed (e.g. a reply with an unknown label),
        # so that cost events still match the provider's invoice.
        self.llm_usage = list(llm_usage or [])
        super().__init__(self.safe_message)


class ProviderUnauthorized(StepFailed):
    error_class = "provider_unauthorized"
    safe_message = "The provider refused the access token; it may need refreshing."


class ProviderTransient(StepFailed):
    error_class = "provider_unavailable"
    safe_message = "The provider is busy or unavailable; the step will be retried."
    transient = True


class ProviderRateLimited(ProviderTransient):
    error_class = "provider_rate_limited"
    safe_message = "The provider asked us to slow down; the request was not processed."


class ProviderRefused(StepFailed):
    error_class = "provider_refused"
    safe_message = "The provider refused the request."


class OutputInvalid(StepFailed):
    error_class = "output_invalid"
    safe_message = "The provider's answer was not what this step expects."


@dataclass(frozen=True)
class LLMUsage:
    """Tokens one model call used, as the provider's response counted them.

    input_tokens are those after the last cache breakpoint (uncached, base price); the two cache
    counts are those written to and read from the prompt cache, each at its own price.
    """

    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


@dataclass(frozen=True)
class LLMSettings:
    """Hapex's own Anthropic account: key, model, base URL."""

    api_key: Secret | None
    model: str = DEFAULT_LLM_MODEL
    base_url: str = "https://api.anthropic.com"
    # Sonnet 5.5 thinks (adaptively) by default and its thinking counts towards max_tokens: room for it.
    max_tokens: int = 4096


@dataclass
class StepResult:
    output: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)
    llm_usage: list[LLMUsage] = field(default_factory=list)


class ProviderHTTP:
    """HTTP to one provider: explicit timeout and CA bundle, statuses mapped to step errors.

    Bodies and URLs of failed calls are never put into an error (they can hold content or
    tokens); the error says which provider answered what status.
    """

    def __init__(self, provider: Provider, *, verify: str, session: requests.Session | None = None,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        self.provider = provider
        self.verify = verify
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.trust_env = False
        self.calls = 0

    def url(self, path: str) -> str:
        base = (self.provider.api_base_url or "").rstrip("/")
        return path if path.startswith("https://") else f"{base}/{path.lstrip('/')}"

    def request(self, method: str, path: str, *, token: Secret | None = None, bearer: bool = True,
                headers: Mapping[str, str] | None = None, check: bool = True, **kwargs: Any) -> requests.Response:
        """One call; with check=False the caller maps the status itself (then calls check_status)."""
        all_headers = dict(headers or {})
        if token is not None and bearer:
            all_headers["Authorization"] = f"Bearer {token.reveal()}"
        self.calls += 1
        try:
            response = self.session.request(method, self.url(path), headers=all_headers, timeout=self.timeout,
                                            verify=self.verify, allow_redirects=False, **kwargs)
        except requests.Timeout:
            raise ProviderTransient(f"{self.provider.name} did not answer in time.") from None
        except requests.RequestException:
            raise ProviderTransient(f"{self.provider.name} could not be reached.") from None
        if check:
            check_status(self.provider, response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return response_json(self.provider, self.request(method, path, **kwargs))


def response_json(provider: Provider, response: requests.Response) -> Any:
    """The decoded body, or OutputInvalid that does not quote it."""
    try:
        return response.json()
    except ValueError:
        raise OutputInvalid(f"{provider.name} answered with something other than JSON.") from None


def path_segment(value: str, what: str) -> str:
    """An id made safe to put in a URL path: percent-encoded, never a dot segment."""
    if not value or value in {".", ".."}:
        raise StepFailed(f"The {what} is not valid.")
    return quote(value, safe="")


def require_token(token: Secret | None, provider: Provider) -> Secret:
    """The connection's token; a step of a connected provider cannot run without one."""
    if token is None or not token:
        raise StepFailed(f"The step needs a connected {provider.name} account.")
    return token


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def check_status(provider: Provider, response: requests.Response) -> None:
    status = response.status_code
    if status < 300:
        return
    if status == 401:
        raise ProviderUnauthorized(f"{provider.name} refused the access token.")
    if status == 429:
        raise ProviderRateLimited(f"{provider.name} asked us to slow down.", retry_after=retry_after_seconds(response))
    if status >= 500 or status == 408:
        raise ProviderTransient(f"{provider.name} answered {status}.", retry_after=retry_after_seconds(response))
    if status == 403:
        raise ProviderRefused(f"{provider.name} refused access (403); the connection may lack a scope.")
    raise ProviderRefused(f"{provider.name} answered {status}.")


@dataclass
class StepContext:
    """What a running step knows about where it is; ids only, nothing secret."""

    client_id: uuid.UUID
    run_id: uuid.UUID
    step_index: int
    http: ProviderHTTP
    llm: LLMSettings
    # Derived from run and step; providers that honour idempotency keys get it.
    idempotency_key: str
    # Webhooks to loopback addresses are refused; only a test or local stack turns this on.
    allow_loopback_webhooks: bool = False

    def provider_request_id(self) -> str:
        """The idempotency key as lowercase hex, a form every provider's id field accepts."""
        return hashlib.sha256(f"{self.client_id}:{self.idempotency_key}".encode()).hexdigest()


CapabilityFunction = Callable[[StepContext, Secret | None, dict[str, Any]], StepResult]
