"""Stored step outputs in the intake: the builder's switch, and the run page asking the agent for them."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import timedelta

import pytest
import responses

from agent_service.runs.engine import execute_run
from shared.db import tenant_transaction
from shared.db.errors import PermissionDenied
from tests.agent_api import with_proof
from tests.integration.conftest import AGENT_TOKEN, PASSWORD, Visitor, new_email
from tests.integration.test_automations_pages import client_of, digest_form, press, save_digest, text_of
from tests.run_fixtures import G, connect, runtime_of, stand_in_providers

SEARCH_CANARY = "CANARY-STORED-EMAIL-5d2e81"
SUMMARY_CANARY = "CANARY-STORED-SUMMARY-c90a47"
SEARCH_OUTPUT = {"messages": [{"id": "m1", "from": "customer@example.com",
                               "subject": f"<script>alert(1)</script> {SEARCH_CANARY}"}]}
SUMMARY_OUTPUT = {"text": f"Two customers wrote. {SUMMARY_CANARY}"}
NOT_LOADED = "The stored outputs could not be loaded right now."
UNREADABLE = "This output could not be decrypted"
METADATA_ONLY = "What each step did, as metadata: never the emails, documents or messages it handled."


def checkbox(body: str) -> str:
    tag = re.search(r'<input type="checkbox"[^>]*name="store_outputs"[^>]*>', body)
    assert tag, "no store_outputs checkbox"
    return tag.group(0)


def outputs_calls(agent_transport) -> list[tuple[str, str]]:
    return [call for call in agent_transport.calls if call[1].endswith("/outputs")]


def ran_digest(visitor: Visitor, email: str, owner_conn, agent_db, agent_service_app, *,
               store_outputs: bool = True, name: str = "Morning digest") -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """(client_id, automation_id, run_id) of a digest built in the form and run to the end."""
    client_id = client_of(owner_conn, email)
    changes = {"store_outputs": "on"} if store_outputs else {}
    automation_id = save_digest(visitor, owner_conn, name=name, **changes)
    rt = runtime_of(agent_service_app, agent_db)
    connect(rt, agent_db, client_id, "google", [G + "gmail.readonly"])
    connect(rt, agent_db, client_id, "slack", ["chat:write"], expires_in=timedelta(days=365))
    page = f"/automations/{automation_id}"
    assert visitor.post(f"{page}/run", token_from=page).status_code == 303
    run_id = owner_conn.execute("SELECT run_id FROM runs WHERE automation_id = %s", [automation_id]).fetchone()[0]
    with responses.RequestsMock() as mock:
        stand_in_providers(mock)
        assert execute_run(rt, client_id=client_id, run_id=run_id) == "succeeded"
    return client_id, automation_id, run_id


def seal(agent_service_app, agent_db, client_id: uuid.UUID, run_id: uuid.UUID, outputs: dict[int, dict]) -> None:
    """Store outputs as the run engine does, through the agent's vault in a tenant transaction."""
    rt = runtime_of(agent_service_app, agent_db)
    with tenant_transaction(agent_db, client_id) as conn:
        for step_index, output in outputs.items():
            rt.vault.seal_step_output(conn, client_id=client_id, run_id=run_id, step_index=step_index, output=output)


def stored_outputs(owner_conn, run_id: uuid.UUID) -> list[int]:
    rows = owner_conn.execute("SELECT step_index FROM run_steps WHERE run_id = %s AND output_ciphertext IS NOT NULL "
                              "ORDER BY step_index", [run_id]).fetchall()
    return [row[0] for row in rows]


def test_the_builder_shows_a_store_outputs_switch_that_is_off_by_default_and_explained(signed_up):
    visitor, _ = signed_up
    body = visitor.get("/automations/new").get_data(as_text=True)
    assert "checked" not in checkbox(body)
    assert 'type="hidden" name="store_outputs"' not in body
    text = re.sub(r"\s+", " ", text_of(visitor.get("/automations/new")))
    assert "Store step outputs</label>" in text
    for said in ("the emails a search found", "AES-256-GCM, under the same keys as your credentials",
                 "Only your account sees them, on the run's page",
                 "resume without repeating the steps it had finished",
                 "deleted with the run's records after the retention period",
                 "at once, for every run of this automation, when you turn this off"):
        assert said in text, said


def test_the_store_outputs_switch_round_trips_through_the_builder_on_and_off(signed_up, owner_conn):
    visitor, _ = signed_up
    form = {**digest_form(visitor), "store_outputs": "on"}
    # An "Add step" press keeps the switch as it was.
    kept = press(visitor, form, "add_step", new_capability="sheets.append")
    assert "checked" in checkbox(kept.get_data(as_text=True))
    automation_id = save_digest(visitor, owner_conn, store_outputs="on")
    assert owner_conn.execute("SELECT store_outputs FROM automations WHERE automation_id = %s",
                              [automation_id]).fetchone() == (True,)
    page = f"/automations/{automation_id}"
    assert "Stored, encrypted like your credentials, and shown on each run's page" in text_of(visitor.get(page))
    edit = visitor.get(f"{page}/edit").get_data(as_text=True)
    assert "checked" in checkbox(edit)

    # A browser posts nothing for an unchecked box.
    off = {key: value for key, value in form.items() if key != "store_outputs"}
    response = press(visitor, off, "save", path=f"{page}/edit")
    assert response.status_code == 303, text_of(response)
    assert owner_conn.execute("SELECT store_outputs, version FROM automations WHERE automation_id = %s",
                              [automation_id]).fetchone() == (False, 2)
    assert "Not stored: they pass from step to step in memory" in text_of(visitor.get(page))
    assert "checked" not in checkbox(visitor.get(f"{page}/edit").get_data(as_text=True))


def test_the_run_page_shows_each_stored_output_under_its_step_escaped_and_uncached(
    signed_up, owner_conn, agent_db, agent_service_app, agent_transport, caplog
):
    visitor, email = signed_up
    caplog.set_level(logging.DEBUG)
    client_id, _, run_id = ran_digest(visitor, email, owner_conn, agent_db, agent_service_app)
    seal(agent_service_app, agent_db, client_id, run_id,
         {0: SEARCH_OUTPUT, 1: SUMMARY_OUTPUT, 2: {"channel": "C0123456", "ts": "1795900000.000100"}})
    # Step 3's ciphertext altered: it no longer authenticates.
    owner_conn.execute("UPDATE run_steps SET output_ciphertext = set_byte(output_ciphertext, 0, "
                       "get_byte(output_ciphertext, 0) # 1) WHERE run_id = %s AND step_index = 2", [run_id])
    agent_transport.calls.clear()

    response = visitor.get(f"/runs/{run_id}")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert outputs_calls(agent_transport) == [("GET", f"/v1/clients/{client_id}/runs/{run_id}/outputs")]
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; " + SEARCH_CANARY in body
    assert '<pre class="output">{\n  &#34;text&#34;: &#34;Two customers wrote. ' + SUMMARY_CANARY in body
    # Each output sits in the row right after its own step's row, in step order.
    rows = re.findall(r"<tr[^>]*>.*?</tr>", body, re.S)
    step_rows = [i for i, row in enumerate(rows) if "<code>gmail.search</code>" in row
                 or "<code>llm.summarise</code>" in row or "<code>slack.post_message</code>" in row]
    assert SEARCH_CANARY in rows[step_rows[0] + 1]
    assert SUMMARY_CANARY in rows[step_rows[1] + 1]
    assert UNREADABLE in rows[step_rows[2] + 1] and "1795900000.000100" not in body
    text = re.sub(r"\s+", " ", text_of(response))
    assert "because this automation stores step outputs" in text
    assert METADATA_ONLY not in text
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    for canary in (SEARCH_CANARY, SUMMARY_CANARY):
        assert canary not in logged
        assert canary not in text_of(visitor.get("/runs"))


def test_a_run_of_an_automation_that_does_not_store_outputs_asks_the_agent_nothing(
    signed_up, owner_conn, agent_db, agent_service_app, agent_transport
):
    visitor, email = signed_up
    _, _, run_id = ran_digest(visitor, email, owner_conn, agent_db, agent_service_app, store_outputs=False)
    agent_transport.calls.clear()
    text = re.sub(r"\s+", " ", text_of(visitor.get(f"/runs/{run_id}")))
    assert METADATA_ONLY in text and "This automation does not store step outputs." in text
    assert outputs_calls(agent_transport) == []


def test_turning_the_switch_off_deletes_the_stored_outputs_at_once(
    signed_up, owner_conn, agent_db, agent_service_app, agent_transport
):
    visitor, email = signed_up
    client_id, automation_id, run_id = ran_digest(visitor, email, owner_conn, agent_db, agent_service_app)
    seal(agent_service_app, agent_db, client_id, run_id, {0: SEARCH_OUTPUT, 1: SUMMARY_OUTPUT})
    assert {0, 1} <= set(stored_outputs(owner_conn, run_id))
    page = f"/automations/{automation_id}"
    off = {key: value for key, value in digest_form(visitor).items() if key != "store_outputs"}
    assert press(visitor, off, "save", path=f"{page}/edit").status_code == 303
    assert stored_outputs(owner_conn, run_id) == []
    agent_transport.calls.clear()
    body = text_of(visitor.get(f"/runs/{run_id}"))
    assert SEARCH_CANARY not in body and SUMMARY_CANARY not in body
    assert outputs_calls(agent_transport) == []


def test_another_clients_run_is_404_and_shows_none_of_its_outputs(
    intake_app, owner_conn, agent_db, agent_service_app, agent_transport
):
    victim = Visitor(intake_app, address="192.0.2.10")
    victim_email = new_email()
    assert victim.signup(victim_email, PASSWORD, business_name="Victim Ltd").status_code == 303
    victim_client, _, run_id = ran_digest(victim, victim_email, owner_conn, agent_db, agent_service_app,
                                          name="Victim secret digest")
    seal(agent_service_app, agent_db, victim_client, run_id, {0: SEARCH_OUTPUT, 1: SUMMARY_OUTPUT})
    assert SUMMARY_CANARY in text_of(victim.get(f"/runs/{run_id}"))

    thief = Visitor(intake_app, address="192.0.2.11")
    thief_email = new_email()
    assert thief.signup(thief_email, PASSWORD, business_name="Thief Ltd").status_code == 303
    agent_transport.calls.clear()
    response = thief.get(f"/runs/{run_id}")
    assert response.status_code == 404
    for hidden in (SEARCH_CANARY, SUMMARY_CANARY, "Victim secret digest"):
        assert hidden not in text_of(response)
    assert outputs_calls(agent_transport) == []
    # Nor does the agent hand them out for the thief's client id.
    thief_client = client_of(owner_conn, thief_email)
    answer = agent_service_app.test_client().get(f"/v1/clients/{thief_client}/runs/{run_id}/outputs",
                                                 headers=with_proof({"Authorization": f"Bearer {AGENT_TOKEN}"},
                                                                    "session", thief.session_cookie()))
    assert answer.status_code == 404
    assert answer.get_json()["error"] == "not_found"
    assert SUMMARY_CANARY not in answer.get_data(as_text=True)


@pytest.mark.parametrize("failure", [503, 404])
def test_when_the_agent_cannot_give_the_outputs_the_run_page_still_renders_and_says_so(
    signed_up, owner_conn, agent_db, agent_service_app, agent_transport, failure
):
    visitor, email = signed_up
    client_id, _, run_id = ran_digest(visitor, email, owner_conn, agent_db, agent_service_app)
    seal(agent_service_app, agent_db, client_id, run_id, {1: SUMMARY_OUTPUT})
    agent_transport.fail_with = failure
    response = visitor.get(f"/runs/{run_id}")
    text = re.sub(r"\s+", " ", text_of(response))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert NOT_LOADED in text
    assert SUMMARY_CANARY not in text
    assert "gmail.search" in text and "messages: 2" in text


def test_the_intake_cannot_read_a_stored_output_itself(signed_up, owner_conn, agent_db, agent_service_app, intake_db):
    visitor, email = signed_up
    client_id, _, run_id = ran_digest(visitor, email, owner_conn, agent_db, agent_service_app)
    seal(agent_service_app, agent_db, client_id, run_id, {1: SUMMARY_OUTPUT})
    for column in ("output_ciphertext", "output_nonce", "output_key_id"):
        with pytest.raises(PermissionDenied), tenant_transaction(intake_db, client_id) as conn:
            conn.execute(f"SELECT {column} FROM run_steps WHERE run_id = %s", [run_id])  # noqa: S608 - fixed names


def test_the_privacy_and_security_pages_say_outputs_are_stored_only_when_the_client_turns_it_on(visitor):
    for path in ("/data-and-privacy", "/security"):
        text = re.sub(r"\s+", " ", text_of(visitor.get(path)))
        assert "in memory and is not stored, unless you turn on \"Store step outputs\" for an automation" in text, path
        assert "AES-256-GCM" in text and "same keys as" in text, path
        assert "at once for every run of the automation when you turn the switch off, and with your account" in text
        assert "outputs pass from step to step in memory and are not stored." not in text, path
