"""Notion: append a paragraph to a page shared with Hapex (PATCH /v1/blocks/{id}/children)."""

from __future__ import annotations

from typing import Any

from agent_service.capabilities.base import (
    OutputInvalid,
    ProviderRefused,
    ProviderTransient,
    StepContext,
    StepResult,
    check_status,
    path_segment,
    require_token,
    response_json,
    retry_after_seconds,
)
from shared.secret import Secret


def append_to_page(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """One paragraph block at the end of the page.

    Notion has no idempotency key; the run engine never re-runs a step recorded as done.
    """
    block = {"object": "block", "type": "paragraph",
             "paragraph": {"rich_text": [{"type": "text", "text": {"content": data["text"]}}]}}
    response = ctx.http.request("PATCH", f"blocks/{path_segment(data['page_id'], 'Notion page id')}/children",
                                token=require_token(token, ctx.http.provider), check=False,
                                headers=dict(ctx.http.provider.api_headers), json={"children": [block]})
    if response.status_code == 404:
        raise ProviderRefused("Notion cannot find that page; share it with the Hapex integration.")
    if response.status_code == 409:  # conflict_error: Notion's advice is to retry
        raise ProviderTransient("Notion reported a conflicting edit.", retry_after=retry_after_seconds(response))
    check_status(ctx.http.provider, response)
    answer = response_json(ctx.http.provider, response)
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list) or not results or not isinstance(results[-1], dict) \
            or not isinstance(results[-1].get("id"), str):
        raise OutputInvalid("Notion answered without the new block.")
    return StepResult({"id": results[-1]["id"]}, counts={"blocks": 1, "characters": len(data["text"])})
