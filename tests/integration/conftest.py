"""The intake app under Flask's test client, with the real agent app behind its AgentClient."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from agent_service.runtime import AgentRuntime
from hapex.localstack.local_secrets import new_token
from intake import create_app as create_intake_app
from intake.agent_client import AgentClient
from intake.config import IntakeConfig
from shared.secret import Secret
from tests.agent_api import build_agent_app
from tests.factories import ClientRows, make_two_clients
from tests.run_fixtures import runtime_for

BASE_URL = "https://intake.test"
AGENT_URL = "https://agent.test"
AGENT_TOKEN = new_token()
_CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                         r'type="hidden" name="csrf_token" value="([^"]+)"|'
                         r'name="csrf_token" value="([^"]+)"')


class WSGIAdapter(BaseAdapter):
    """Hands requests' calls to a Flask app's test client: the real agent, with no socket."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.client = app.test_client()
        self.calls: list[tuple[str, str]] = []
        self.fail_with: int | None = None
        # Calls that fail_with spares: the password check, so that what fails is the call after it.
        self.spared: tuple[str, ...] = ("/password/check",)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        assert request.url is not None and request.method is not None
        path = request.url.removeprefix(AGENT_URL)
        self.calls.append((request.method, path))
        response = requests.Response()
        response.request = request
        response.url = request.url
        if self.fail_with is not None and not path.endswith(self.spared):
            response.status_code = self.fail_with
            response.raw = io.BytesIO(b'{"error": "unavailable", "message": "down"}')
            return response
        answer = self.client.open(path, method=request.method, headers=dict(request.headers),
                                  data=request.body)
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(answer.headers)
        response.raw = io.BytesIO(answer.get_data())
        return response

    def close(self) -> None:
        pass


@pytest.fixture
def agent_environ() -> dict[str, str] | None:
    """What the agent behind the intake reads beside its config; a test module overrides it (the chat's key)."""
    return None


@pytest.fixture
def agent_service_app(database, agent_db, agent_environ):
    """The agent behind the intake's AgentClient, taking the intake's AGENT_TOKEN."""
    return build_agent_app(database, agent_db, service_token=AGENT_TOKEN, environ=agent_environ)


@pytest.fixture
def rt(agent_db) -> AgentRuntime:
    """A run engine on the agent's database, with a vault key of its own."""
    return runtime_for(agent_db)


@pytest.fixture
def two_clients(intake_db, agent_db) -> tuple[ClientRows, ClientRows]:
    """Client A (Google and Slack connected) and client B (Google), each with a user and an automation."""
    return make_two_clients(intake_db, agent_db)


def intake_config(database, **overrides: Any) -> IntakeConfig:
    settings: dict[str, Any] = {
        "database_url": database.intake_dsn,
        "session_secret": Secret(new_token()),
        "agent_service_url": AGENT_URL,
        "agent_service_ca": None,
        "agent_service_token": Secret(AGENT_TOKEN),
        "password_hash_profile": "test",
    }
    settings.update(overrides)
    return IntakeConfig(**settings)


@pytest.fixture
def agent_transport(agent_service_app) -> WSGIAdapter:
    return WSGIAdapter(agent_service_app)


def build_intake_app(database, intake_db, agent_transport, **overrides: Any):
    config = intake_config(database, **overrides)
    agent = AgentClient(config)
    agent.session.mount(AGENT_URL, agent_transport)
    return create_intake_app(config, database=intake_db, agent=agent)


@pytest.fixture
def intake_app(database, intake_db, agent_transport):
    return build_intake_app(database, intake_db, agent_transport)


class Visitor:
    """One browser's worth of cookies against the intake app, posting forms as a browser does."""

    def __init__(self, app: Any, *, address: str = "203.0.113.7") -> None:
        self.app = app
        self.client = app.test_client()
        self.address = address

    def _environ(self) -> dict[str, str]:
        return {"REMOTE_ADDR": self.address}

    def get(self, path: str, **kwargs: Any):
        return self.client.get(path, base_url=BASE_URL, environ_base=self._environ(), **kwargs)

    def csrf_token(self, page: str) -> str:
        html = self.get(page).get_data(as_text=True)
        match = _CSRF_FIELD.search(html)
        assert match, f"no CSRF field on {page}"
        return next(group for group in match.groups() if group)

    def post(self, path: str, data: dict[str, str] | None = None, *, token_from: str | None = None,
             with_token: bool = True, **kwargs: Any):
        form = dict(data or {})
        if with_token:
            form["csrf_token"] = self.csrf_token(token_from or path)
        headers = {"Referer": BASE_URL + (token_from or path)}
        return self.client.post(path, data=form, base_url=BASE_URL, headers=headers,
                                environ_base=self._environ(), **kwargs)

    def signup(self, email: str, password: str, business_name: str = "Acme Bakery", *, verified: bool = True,
               log_in: bool = True):
        """Sign up as a person does: the form, (by default) the emailed link, then the login page.

        The link is taken as followed by marking the address confirmed directly; tests of the link
        itself (tests/integration/test_accounts_email_links.py) pass verified=False and follow it."""
        answer = self.post("/signup", {"business_name": business_name, "email": email, "password": password})
        if answer.status_code != 303:
            return answer
        if verified:
            mark_email_verified(self.app.extensions["hapex_db"], email)
        return self.login(email, password) if log_in else answer

    def signup_form(self, email: str, password: str, business_name: str = "Acme Bakery"):
        return self.post("/signup", {"business_name": business_name, "email": email, "password": password})

    def login(self, email: str, password: str):
        return self.post("/login", {"email": email, "password": password})

    def logout(self):
        return self.post("/logout", token_from="/account")

    def change_password(self, current: str, new: str):
        return self.post("/account/password", {"current_password": current, "new_password": new,
                                               "confirm_password": new}, token_from="/account")

    def delete_account(self, password: str):
        return self.post("/account/delete", {"password": password}, token_from="/account")

    def session_cookie(self) -> str | None:
        cookie = self.client.get_cookie("__Host-hapex_session", domain="intake.test")
        return None if cookie is None else cookie.value

    def set_session_cookie(self, value: str) -> None:
        self.client.set_cookie("__Host-hapex_session", value, domain="intake.test")


def mark_email_verified(intake_db, email: str) -> None:
    """What following the verification link does to the user's row, for tests about something else."""
    from intake.accounts import repository
    from shared.db import tenant_transaction

    with intake_db.transaction() as conn:
        found = repository.find_account(conn, email=email)
    if found is None:
        return
    with tenant_transaction(intake_db, found["client_id"]) as conn:
        repository.mark_email_verified(conn, client_id=found["client_id"], user_id=found["user_id"])


def new_email() -> str:
    return f"owner-{uuid.uuid4().hex[:10]}@example.com"


PASSWORD = "correct horse battery staple"


@pytest.fixture
def visitor(intake_app) -> Iterator[Visitor]:
    yield Visitor(intake_app)


@pytest.fixture
def signed_up(visitor) -> tuple[Visitor, str]:
    """A visitor who has just signed up (and is signed in), with their email."""
    email = new_email()
    response = visitor.signup(email, PASSWORD)
    assert response.status_code == 303, response.get_data(as_text=True)
    return visitor, email
