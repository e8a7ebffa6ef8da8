"""gunicorn's entry point for the agent service."""

from agent_service import create_app
from agent_service.config import AgentConfig
from agent_service.vault import startup as vault_startup
from shared.structured_logging import configure_logging

config = AgentConfig.from_env()
configure_logging("agent", config.log_level)
app = create_app(config)
app.extensions["hapex_db"].assert_role_is_confined()
# Refuses to serve when the database holds ciphertexts under key ids this process lacks.
vault_startup.install(app, vault_startup.open_vault(config, app.extensions["hapex_db"]))
