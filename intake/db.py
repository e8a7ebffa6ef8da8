"""The intake's database and agent handles, as the app holds them."""

from __future__ import annotations

from flask import current_app

from intake.agent_client import AgentClient
from shared.db import Database


def get_db() -> Database:
    return current_app.extensions["hapex_db"]  # type: ignore[no-any-return]  # Flask's app state holds Any


def get_agent() -> AgentClient:
    return current_app.extensions["hapex_agent"]  # type: ignore[no-any-return]  # Flask's app state holds Any
