"""HubSpot: create a CRM contact (POST /crm/v3/objects/contacts)."""

from __future__ import annotations

from typing import Any

from agent_service.capabilities.base import (
    OutputInvalid,
    ProviderRefused,
    StepContext,
    StepResult,
    check_status,
    require_token,
    response_json,
)
from shared.secret import Secret

PROPERTIES = {"email": "email", "first_name": "firstname", "last_name": "lastname", "company": "company"}


def create_contact(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """A new contact with the given properties; empty ones are left unset.

    HubSpot has no idempotency key, but refuses a second contact with the same email (409).
    """
    properties = {name: data[field] for field, name in PROPERTIES.items() if data.get(field)}
    response = ctx.http.request("POST", "crm/v3/objects/contacts", token=require_token(token, ctx.http.provider),
                                check=False, json={"properties": properties})
    if response.status_code == 409:
        raise ProviderRefused("A HubSpot contact with this email address already exists.")
    check_status(ctx.http.provider, response)
    created = response_json(ctx.http.provider, response)
    if not isinstance(created, dict) or not isinstance(created.get("id"), str | int):
        raise OutputInvalid("HubSpot answered without a contact id.")
    return StepResult({"id": str(created["id"])}, counts={"contacts": 1})
