"""Entry point of an agent worker process: runs queued jobs until told to stop."""

from __future__ import annotations

import asyncio
import logging

import procrastinate

from agent_service import jobs
from agent_service.config import AgentConfig
from agent_service.runtime import AgentRuntime
from agent_service.vault import open_vault
from shared.db import Database
from shared.structured_logging import configure_logging

logger = logging.getLogger(__name__)


async def _settle_stalled_jobs(app: procrastinate.App) -> None:
    async with app.open_async():
        await jobs.settle_stalled_jobs_at_start(app)


def run_worker(config: AgentConfig, *, concurrency: int = 1) -> None:
    configure_logging("worker", config.log_level)
    database = Database(config.database_url, config.pool, name="hapex-worker").open()
    try:
        database.assert_role_is_confined()
        # Refuses to run jobs when the database holds ciphertexts under key ids it lacks.
        vault = open_vault(config, database)
    except Exception:
        database.close()
        raise
    runtime = AgentRuntime.build(database, vault, config)
    app = jobs.build_queue(config.database_url, runtime)
    if runtime.allow_loopback_webhooks:
        logger.warning("benchmark switch on: webhook steps may call loopback addresses")
    logger.info("worker starting")
    try:
        asyncio.run(_settle_stalled_jobs(app))
        app.run_worker(
            queues=["runs", "maintenance"],
            concurrency=concurrency,
            install_signal_handlers=True,
        )
    finally:
        database.close()
        logger.info("worker stopped")
