"""The signed-in client's own pages: their connections (automations, runs and costs: intake.automations)."""

from intake.workspace.views import blueprint

__all__ = ["blueprint"]
