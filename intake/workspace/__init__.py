"""The signed-in client's own pages: automations, connections, runs and costs."""

from intake.workspace.views import blueprint

__all__ = ["blueprint"]
