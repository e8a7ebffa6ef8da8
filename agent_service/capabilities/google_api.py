"""What every Google API call shares: the error dialect and where each API lives."""

from __future__ import annotations

from typing import Any

import requests

from agent_service.capabilities.base import (
    ProviderTransient,
    StepContext,
    check_status,
    require_token,
    response_json,
    retry_after_seconds,
)
from shared.catalog import PROVIDERS
from shared.secret import Secret

# Google answers some quota errors with 403 rather than 429; its guidance is to back off and retry.
_RETRYABLE_403_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "backendError"})


def api_root(ctx: StepContext, production_root: str) -> str:
    """Where an API lives: its own host in production, the overridden base under a local stand-in.

    Gmail, Calendar and Drive answer on www.googleapis.com; Sheets v4 only on its own host.
    """
    configured = (ctx.http.provider.api_base_url or "").rstrip("/")
    if configured and configured != (PROVIDERS["google"].api_base_url or "").rstrip("/"):
        return configured
    return production_root.rstrip("/")


def google_request(ctx: StepContext, method: str, path: str, token: Secret | None, *,
                   tolerate: frozenset[int] = frozenset(), **kwargs: Any) -> requests.Response:
    """One Google call with statuses mapped; statuses in `tolerate` come back for the caller."""
    response = ctx.http.request(method, path, token=require_token(token, ctx.http.provider), check=False, **kwargs)
    if response.status_code in tolerate:
        return response
    if response.status_code == 403 and _error_reasons(response) & _RETRYABLE_403_REASONS:
        raise ProviderTransient(f"{ctx.http.provider.name} asked Hapex to slow down (403 rate limit).",
                                retry_after=retry_after_seconds(response))
    check_status(ctx.http.provider, response)
    return response


def google_json(ctx: StepContext, method: str, path: str, token: Secret | None, **kwargs: Any) -> Any:
    """The decoded JSON body of a successful Google call."""
    return response_json(ctx.http.provider, google_request(ctx, method, path, token, **kwargs))


def _error_reasons(response: requests.Response) -> set[str]:
    try:
        error = response.json().get("error", {})
        return {str(item.get("reason")) for item in error.get("errors", []) if isinstance(item, dict)}
    except (ValueError, AttributeError):
        return set()
