"""A signed-in client editing ids in the URL meets only 404s for what is not theirs."""

from __future__ import annotations

import re
import uuid

import pytest

from shared.db import tenant_transaction
from tests.factories import client_of, make_automation, make_connection
from tests.integration.conftest import PASSWORD, Visitor, new_email


def make_run(agent_db, client_id, automation_id) -> uuid.UUID:
    with tenant_transaction(agent_db, client_id) as conn:
        run_id = conn.execute(
            "INSERT INTO runs (client_id, automation_id, automation_version, trigger_kind, status) "
            "VALUES (%s, %s, 1, 'manual', 'succeeded') RETURNING run_id",
            [client_id, automation_id]).fetchone()[0]
        conn.execute(
            "INSERT INTO run_steps (client_id, run_id, step_index, capability, status, safe_message) "
            "VALUES (%s, %s, 0, 'gmail.search', 'succeeded', 'Found 3 emails')", [client_id, run_id])
    return run_id


@pytest.fixture
def two_signed_in_clients(intake_app, intake_db, agent_db, owner_conn):
    """Two signed-in clients, each with an automation, a connection and a run of its own."""
    clients = {}
    for label in ("alice", "bob"):
        visitor = Visitor(intake_app, address="192.0.2.1")
        email = new_email()
        assert visitor.signup(email, PASSWORD, business_name=f"{label} ltd").status_code == 303
        visitor.get("/automations")  # shows, and so uses up, the welcome notice
        client_id = client_of(owner_conn, email)
        automation = make_automation(intake_db, client_id, name=f"{label} secret digest")
        connection = make_connection(agent_db, client_id, provider="slack", scopes=[f"{label}:scope"])
        run = make_run(agent_db, client_id, automation)
        clients[label] = {
            "visitor": visitor,
            "name": f"{label} secret digest",
            "pages": [f"/automations/{automation}", f"/connections/{connection}", f"/runs/{run}"],
        }
    return clients


def test_each_client_opens_their_own_pages(two_signed_in_clients):
    for label, client in two_signed_in_clients.items():
        for path in client["pages"]:
            response = client["visitor"].get(path)
            assert response.status_code == 200, path
        listing = client["visitor"].get("/automations").get_data(as_text=True)
        assert client["name"] in listing


def test_another_clients_ids_in_the_url_get_404_and_none_of_their_data(two_signed_in_clients):
    alice, bob = two_signed_in_clients["alice"], two_signed_in_clients["bob"]
    for thief, victim in ((alice, bob), (bob, alice)):
        for path in victim["pages"]:
            response = thief["visitor"].get(path)
            body = response.get_data(as_text=True)
            assert response.status_code == 404, path
            assert victim["name"] not in body
            assert path.rsplit("/", 1)[1] not in body
        for listing in ("/automations", "/connections", "/runs", "/costs"):
            assert victim["name"] not in thief["visitor"].get(listing).get_data(as_text=True)


@pytest.mark.parametrize("kind", ["automations", "connections", "runs"])
def test_an_id_that_exists_nowhere_is_the_same_404(two_signed_in_clients, kind):
    visitor = two_signed_in_clients["alice"]["visitor"]
    stolen = next(p for p in two_signed_in_clients["bob"]["pages"] if p.startswith(f"/{kind}/"))
    missing = visitor.get(f"/{kind}/{uuid.uuid4()}")
    foreign = visitor.get(stolen)
    assert missing.status_code == foreign.status_code == 404
    # The same page but for the sign-out form's CSRF token, which carries a timestamp of the second it was made.
    assert without_csrf_tokens(missing.get_data(as_text=True)) == without_csrf_tokens(foreign.get_data(as_text=True))


def without_csrf_tokens(page: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', page)


@pytest.mark.parametrize("path", ["/automations/not-a-uuid", "/runs/1%20OR%201=1", "/connections/../account"])
def test_a_malformed_id_is_a_404_not_an_error(two_signed_in_clients, path):
    response = two_signed_in_clients["alice"]["visitor"].get(path)
    assert response.status_code in (404, 308), path


def test_the_run_page_shows_step_metadata_only(two_signed_in_clients):
    visitor = two_signed_in_clients["alice"]["visitor"]
    run_path = next(p for p in two_signed_in_clients["alice"]["pages"] if p.startswith("/runs/"))
    body = visitor.get(run_path).get_data(as_text=True)
    assert "gmail.search" in body and "Found 3 emails" in body
