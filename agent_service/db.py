"""The agent's database handle, as the app holds it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

from shared.db import Database

if TYPE_CHECKING:
    from agent_service.runtime import AgentRuntime


def get_db() -> Database:
    return current_app.extensions["hapex_db"]  # type: ignore[no-any-return]  # Flask's app state holds Any


def get_runtime() -> AgentRuntime:
    """The vault, OAuth clients and outbound settings of the running agent app."""
    runtime: AgentRuntime = current_app.extensions["hapex_runtime"]
    return runtime
