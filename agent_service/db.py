"""The agent's database handle, as the app holds it."""

from __future__ import annotations

from flask import current_app

from shared.db import Database


def get_db() -> Database:
    return current_app.extensions["hapex_db"]  # type: ignore[no-any-return]


def get_runtime():  # type: ignore[no-untyped-def]
    """The vault, OAuth clients and outbound settings of the running agent app."""
    from agent_service.runtime import AgentRuntime

    runtime: AgentRuntime = current_app.extensions["hapex_runtime"]
    return runtime
