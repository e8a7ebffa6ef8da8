"""gunicorn's entry point for the intake service."""

from intake import create_app
from intake.config import IntakeConfig
from shared.structured_logging import configure_logging

config = IntakeConfig.from_env()
configure_logging("intake", config.log_level, log_format=config.log_format)
app = create_app(config)
app.extensions["hapex_db"].assert_role_is_confined()
