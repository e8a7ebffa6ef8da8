"""Operator routes under /v1/admin/, opened only by AGENT_ADMIN_TOKEN."""

from agent_service.admin.views import blueprint

__all__ = ["blueprint"]
