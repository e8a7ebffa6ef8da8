"""The build chat: a client describes an automation in words, Claude drafts it, the client approves."""

from intake.chat.views import blueprint

__all__ = ["blueprint"]
