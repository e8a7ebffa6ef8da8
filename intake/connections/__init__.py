"""Connections: every provider the client may connect, OAuth consent, API keys, disconnecting."""

from intake.connections.views import blueprint

__all__ = ["blueprint"]
