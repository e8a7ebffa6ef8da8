"""The agent's database handle, as the app holds it."""

from __future__ import annotations

from flask import current_app

from shared.db import Database


def get_db() -> Database:
    return current_app.extensions["hapex_db"]  # type: ignore[no-any-return]
