"""The client's automations (built with a form over the catalog), runs, costs and webhook trigger."""

from intake.automations.hooks import blueprint as hooks_blueprint
from intake.automations.views import blueprint

__all__ = ["blueprint", "hooks_blueprint"]
