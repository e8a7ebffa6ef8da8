"""A client with connections and an automation, ready for the run engine, plus provider stand-ins."""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import responses

from agent_service.capabilities import LLMSettings
from agent_service.connections.provider_oauth import OAuthClient
from agent_service.runtime import AgentRuntime, RunLimits
from agent_service.vault import Keyring, Purpose, Vault
from shared.automations.repository import create_automation, set_status
from shared.catalog import UNCONFIGURED, ResolvedCatalog
from shared.db import Database, tenant_transaction
from shared.secret import Secret
from tests.factories import make_client, make_connection

G = "https://www.googleapis.com/auth/"
GMAIL = "https://www.googleapis.com/gmail/v1/users/me"
TOKEN_URL = "https://oauth2.googleapis.com/token"
ANTHROPIC = "https://api.anthropic.com/v1/messages"
SLACK_POST = "https://slack.com/api/chat.postMessage"

DIGEST = {
    "name": "Morning digest",
    "trigger": {"kind": "manual"},
    "steps": [
        {"capability": "gmail.search", "input": {"query": "is:unread newer_than:1d"}},
        {"capability": "llm.summarise", "input": {"text": {"$ref": "steps.0.messages"}}},
        {"capability": "slack.post_message", "input": {"channel": "#support", "text": {"$ref": "steps.1.text"}}},
    ],
}


def runtime_for(agent_db: Database, *, key: bytes | None = None, limits: RunLimits | None = None,
                providers: ResolvedCatalog = UNCONFIGURED) -> AgentRuntime:
    return AgentRuntime(
        db=agent_db,
        vault=Vault(Keyring(key or os.urandom(32)), agent_db),
        oauth_clients={p: OAuthClient(f"{p}-client", Secret(f"{p}-secret")) for p in ("google", "slack")},
        llm=LLMSettings(api_key=Secret("sk-ant-test-" + secrets.token_hex(8)), model="claude-sonnet-5-5"),
        verify="/dev/null",
        limits=limits or RunLimits(backoff_base_seconds=0.0),
        providers=providers,
    )


def runtime_of(agent_app: Any, agent_db: Database) -> AgentRuntime:
    """A run engine holding the agent app's own vault, so what it seals the app's routes can open."""
    rt = runtime_for(agent_db)
    rt.vault = agent_app.extensions["hapex_vault"]
    return rt


@dataclass
class Tenant:
    client_id: uuid.UUID
    google: uuid.UUID
    slack: uuid.UUID
    tokens: dict[str, str]


def connect(rt: AgentRuntime, agent_db: Database, client_id: uuid.UUID, provider: str, scopes: list[str], *,
            expires_in: timedelta = timedelta(hours=1), refresh: bool = True) -> tuple[uuid.UUID, dict[str, str]]:
    connection_id = make_connection(agent_db, client_id, provider=provider, scopes=scopes)
    tokens = {"access": f"{provider}-access-canary-{secrets.token_hex(6)}",
              "refresh": f"{provider}-refresh-canary-{secrets.token_hex(6)}"}
    with tenant_transaction(agent_db, client_id) as conn:
        rt.vault.store(conn, client_id=client_id, connection_id=connection_id, purpose=Purpose.ACCESS_TOKEN,
                       secret=Secret(tokens["access"]))
        if refresh:
            rt.vault.store(conn, client_id=client_id, connection_id=connection_id, purpose=Purpose.REFRESH_TOKEN,
                           secret=Secret(tokens["refresh"]))
        conn.execute("UPDATE connections SET access_token_expires_at = %s WHERE connection_id = %s",
                     [datetime.now(UTC) + expires_in, connection_id])
    return connection_id, tokens


def tenant(rt: AgentRuntime, intake_db: Database, agent_db: Database, *,
           google_expires_in: timedelta = timedelta(hours=1)) -> Tenant:
    client_id = make_client(intake_db)
    google, g_tokens = connect(rt, agent_db, client_id, "google", [G + "gmail.readonly"],
                               expires_in=google_expires_in)
    slack, s_tokens = connect(rt, agent_db, client_id, "slack", ["chat:write"], expires_in=timedelta(days=365))
    return Tenant(client_id, google, slack, {"google_access": g_tokens["access"], "google_refresh": g_tokens["refresh"],
                                              "slack_access": s_tokens["access"]})


def automation(intake_db: Database, client_id: uuid.UUID, definition: dict[str, Any] = DIGEST,
               status: str = "enabled") -> uuid.UUID:
    with tenant_transaction(intake_db, client_id) as conn:
        automation_id = create_automation(conn, client_id=client_id, definition=definition)
        set_status(conn, automation_id=automation_id, status=status)
    return automation_id


def stand_in_providers(mock: responses.RequestsMock, *, email_body: str = "", llm_reply: str = "Two customers wrote.",
                       input_tokens: int = 1234, output_tokens: int = 56) -> None:
    """Gmail search, Anthropic and Slack, answering as their real APIs do."""
    mock.get(f"{GMAIL}/messages", json={"messages": [{"id": "m1", "threadId": "t1"}, {"id": "m2", "threadId": "t2"}],
                                        "resultSizeEstimate": 2})
    for message_id in ("m1", "m2"):
        mock.get(f"{GMAIL}/messages/{message_id}", json={
            "id": message_id, "threadId": "t" + message_id[1:], "internalDate": "1795900000000",
            "snippet": email_body,
            "payload": {"headers": [{"name": "From", "value": "customer@example.com"},
                                    {"name": "Subject", "value": f"Order problem {email_body}"},
                                    {"name": "Date", "value": "Sat, 28 Nov 2026 08:00:00 +0000"}]}})
    mock.post(ANTHROPIC, json={
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
        "content": [{"type": "text", "text": llm_reply}], "stop_reason": "end_turn",
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}})
    mock.post(SLACK_POST, json={"ok": True, "channel": "C0123456", "ts": "1795900000.000100"})
