"""gunicorn's entry point for the agent service."""

from agent_service import create_app
from agent_service.config import AgentConfig
from shared.structured_logging import configure_logging

config = AgentConfig.from_env()
configure_logging("agent", config.log_level, log_format=config.log_format)
app = create_app(config)
app.extensions["hapex_db"].assert_role_is_confined()
