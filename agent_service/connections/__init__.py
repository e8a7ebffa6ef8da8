"""A client's connections to providers (metadata; credentials live in the vault)."""

from agent_service.connections.views import blueprint

__all__ = ["blueprint"]
