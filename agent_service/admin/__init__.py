"""Operator routes under /v1/admin/, opened only by AGENT_ADMIN_TOKEN."""
