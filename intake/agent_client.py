"""Calls from the intake service to the agent service: HTTPS only, bearer token, our CA."""

from __future__ import annotations

import logging
from typing import Any

import requests

from intake.config import IntakeConfig

logger = logging.getLogger(__name__)

TIMEOUT = (3.05, 30)


class AgentUnavailable(RuntimeError):
    """The agent service could not be reached or answered with an error."""


class AgentClient:
    """A small, explicit client; `verify` is passed on every call so REQUESTS_CA_BUNDLE cannot widen it."""

    def __init__(self, config: IntakeConfig) -> None:
        if not config.agent_service_url.startswith("https://"):
            raise ValueError("AGENT_SERVICE_URL must be https")
        self.base_url = config.agent_service_url
        self.verify: str | bool = config.agent_service_ca or True
        self._token = config.agent_service_token
        self.session = requests.Session()
        self.session.trust_env = False

    def request(self, method: str, path: str, *, json: Any = None) -> requests.Response:
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                json=json,
                headers={"Authorization": f"Bearer {self._token.reveal()}"},
                timeout=TIMEOUT,
                verify=self.verify,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            logger.warning("agent service unreachable", extra={"error_class": type(exc).__name__})
            raise AgentUnavailable() from None
        if response.status_code >= 500:
            logger.warning("agent service error", extra={"status_code": response.status_code})
            raise AgentUnavailable()
        return response

    def get_json(self, path: str) -> Any:
        response = self.request("GET", path)
        if response.status_code != 200:
            raise AgentUnavailable()
        return response.json()
