"""Stored step outputs: sealed like credentials, bound to their step, resumed from, forgotten on request."""

from __future__ import annotations

import json
import logging
import os
import uuid

import psycopg
import pytest
import responses

from agent_service.runs.engine import execute_run
from agent_service.runs.triggers import start_run
from agent_service.vault import Keyring, rotation
from agent_service.vault.outputs import OutputTooLarge
from agent_service.vault.startup import MissingCredentialKeys, check_credential_keys
from shared.automations.repository import update_automation
from shared.db import tenant_transaction
from shared.db.errors import PermissionDenied
from tests.agent_api import acting_for
from tests.run_fixtures import (
    ANTHROPIC,
    DIGEST,
    GMAIL,
    SLACK_POST,
    automation,
    runtime_for,
    runtime_of,
    stand_in_providers,
    tenant,
)

STORED = {**DIGEST, "store_outputs": True}
KEY_1 = os.urandom(32)
KEY_2 = os.urandom(32)


class WorkerKilled(BaseException):
    """What a SIGKILL looks like from inside the process: nothing after it runs, nothing catches it."""


def start(rt, client_id, automation_id):
    with tenant_transaction(rt.db, client_id) as conn:
        return start_run(conn, client_id=client_id, automation_id=automation_id, trigger_kind="manual").run_id


def sealed_rows(owner_conn, run_id):
    return owner_conn.execute(
        "SELECT step_index, output_key_id, output_nonce, output_ciphertext FROM run_steps WHERE run_id = %s "
        "ORDER BY step_index", [run_id]).fetchall()


def opened(rt, client_id, run_id):
    with tenant_transaction(rt.db, client_id) as conn:
        return rt.vault.open_step_outputs(conn, client_id=client_id, run_id=run_id)


def calls_to(prefix):
    return [c for c in responses.calls if c.request.url.startswith(prefix)]


@responses.activate
def test_outputs_are_sealed_beside_each_step_and_open_only_for_their_client(rt, intake_db, agent_db, owner_conn):
    canary = "STOREDCANARY-51d0"
    t = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock, email_body=canary, llm_reply=f"Summary {canary}")
    run_id = start(rt, t.client_id, automation(intake_db, t.client_id, STORED))
    usage = owner_conn.execute("SELECT encryptions FROM vault_key_usage").fetchall()
    assert execute_run(rt, client_id=t.client_id, run_id=run_id) == "succeeded"
    # Sealed under the run's own subkey: the credential key's nonce budget is not drawn on.
    assert owner_conn.execute("SELECT encryptions FROM vault_key_usage").fetchall() == usage

    rows = sealed_rows(owner_conn, run_id)
    assert [r[1] for r in rows] == [rt.vault.keyring.primary_key_id] * 3
    assert len({bytes(r[2]) for r in rows}) == 3  # a fresh nonce each
    everything = json.dumps(owner_conn.execute("SELECT row_to_json(s) FROM run_steps s").fetchall(), default=str)
    assert canary not in everything and canary.encode() not in b"".join(bytes(r[3]) for r in rows)

    outputs = opened(rt, t.client_id, run_id)
    assert [(o.step_index, o.capability) for o in outputs] == [
        (0, "gmail.search"), (1, "llm.summarise"), (2, "slack.post_message")]
    assert outputs[1].output["text"] == f"Summary {canary}"
    assert canary in json.dumps(outputs[0].output["messages"])
    assert canary not in repr(outputs)
    # Another client's transaction sees no such run, so nothing to open.
    other = tenant(rt, intake_db, agent_db)
    assert opened(rt, other.client_id, run_id) == []


@responses.activate
def test_without_the_switch_nothing_is_stored(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock)
    run_id = start(rt, t.client_id, automation(intake_db, t.client_id))
    assert execute_run(rt, client_id=t.client_id, run_id=run_id) == "succeeded"
    assert [r[1:] for r in sealed_rows(owner_conn, run_id)] == [(None, None, None)] * 3


@responses.activate
def test_an_output_moved_to_another_step_run_or_client_or_altered_does_not_open(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    other = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock)
    mine = start(rt, t.client_id, automation(intake_db, t.client_id, STORED))
    second = start(rt, t.client_id, automation(intake_db, t.client_id, STORED))
    theirs = start(rt, other.client_id, automation(intake_db, other.client_id, STORED))
    for client_id, run_id in ((t.client_id, mine), (t.client_id, second), (other.client_id, theirs)):
        assert execute_run(rt, client_id=client_id, run_id=run_id) == "succeeded"

    def copy(src_run, src_step, dst_run, dst_step):
        owner_conn.execute(
            "UPDATE run_steps d SET output_ciphertext = s.output_ciphertext, output_nonce = s.output_nonce, "
            "output_key_id = s.output_key_id FROM run_steps s WHERE s.run_id = %s AND s.step_index = %s "
            "AND d.run_id = %s AND d.step_index = %s", [src_run, src_step, dst_run, dst_step])

    copy(mine, 0, mine, 1)  # another step of the same run
    copy(mine, 2, second, 2)  # the same step of another run
    copy(mine, 0, theirs, 0)  # another client
    owner_conn.execute("UPDATE run_steps SET output_ciphertext = set_byte(output_ciphertext, 0, "
                       "get_byte(output_ciphertext, 0) # 1) WHERE run_id = %s AND step_index = 1", [second])
    assert [o.unreadable for o in opened(rt, t.client_id, mine)] == [False, True, False]
    assert [o.unreadable for o in opened(rt, t.client_id, second)] == [False, True, True]
    assert [o.unreadable for o in opened(rt, other.client_id, theirs)] == [True, False, False]


def _kill_during(mock, url):
    def killed(request):
        raise WorkerKilled()
    mock.add_callback(responses.POST, url, callback=killed)


@responses.activate
def test_a_worker_killed_during_a_reading_step_is_resumed_from_the_stored_outputs(
        rt, intake_db, agent_db, owner_conn, caplog):
    t = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock, llm_reply="Resumed summary")
    responses.remove(responses.POST, ANTHROPIC)
    _kill_during(responses.mock, ANTHROPIC)
    run_id = start(rt, t.client_id, automation(intake_db, t.client_id, STORED))
    with pytest.raises(WorkerKilled):
        execute_run(rt, client_id=t.client_id, run_id=run_id)
    states = owner_conn.execute("SELECT status FROM run_steps WHERE run_id = %s ORDER BY step_index",
                                [run_id]).fetchall()
    assert [s[0] for s in states] == ["succeeded", "running", "pending"]
    gmail_calls = len(calls_to(GMAIL))

    responses.remove(responses.POST, ANTHROPIC)
    stand_in_providers_anthropic_only(responses.mock, "Resumed summary")
    with caplog.at_level(logging.INFO):
        assert execute_run(rt, client_id=t.client_id, run_id=run_id) == "succeeded"
    assert len(calls_to(GMAIL)) == gmail_calls  # the search was not repeated
    summarised = json.loads(calls_to(ANTHROPIC)[-1].request.body)
    assert "customer@example.com" in json.dumps(summarised)  # its stored output fed the summary
    assert json.loads(calls_to(SLACK_POST)[0].request.body)["text"] == "Resumed summary"
    assert len(calls_to(SLACK_POST)) == 1
    attempts = owner_conn.execute("SELECT status, attempt_count FROM run_steps WHERE run_id = %s "
                                  "ORDER BY step_index", [run_id]).fetchall()
    assert attempts == [("succeeded", 1), ("succeeded", 2), ("succeeded", 1)]
    assert any(r.getMessage() == "run resumed after a worker interruption" for r in caplog.records)


def stand_in_providers_anthropic_only(mock, reply):
    mock.post(ANTHROPIC, json={
        "id": "msg_02", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
        "content": [{"type": "text", "text": reply}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 5}})


@responses.activate
def test_a_worker_killed_during_a_step_with_side_effects_is_not_resumed(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock)
    responses.remove(responses.POST, SLACK_POST)
    _kill_during(responses.mock, SLACK_POST)
    run_id = start(rt, t.client_id, automation(intake_db, t.client_id, STORED))
    with pytest.raises(WorkerKilled):
        execute_run(rt, client_id=t.client_id, run_id=run_id)
    before = len(responses.calls)
    assert execute_run(rt, client_id=t.client_id, run_id=run_id) == "failed"
    assert len(responses.calls) == before  # the message may have been posted: never again
    assert owner_conn.execute("SELECT error_class FROM runs WHERE run_id = %s", [run_id]).fetchone() == (
        "worker_interrupted",)


@responses.activate
def test_a_finished_step_whose_stored_output_does_not_open_is_not_resumed(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock)
    responses.remove(responses.POST, ANTHROPIC)
    _kill_during(responses.mock, ANTHROPIC)
    run_id = start(rt, t.client_id, automation(intake_db, t.client_id, STORED))
    with pytest.raises(WorkerKilled):
        execute_run(rt, client_id=t.client_id, run_id=run_id)
    owner_conn.execute("UPDATE run_steps SET output_nonce = set_byte(output_nonce, 0, get_byte(output_nonce, 0) # 1) "
                       "WHERE run_id = %s AND step_index = 0", [run_id])
    before = len(responses.calls)
    assert execute_run(rt, client_id=t.client_id, run_id=run_id) == "failed"
    assert len(responses.calls) == before
    assert [s[0] for s in owner_conn.execute("SELECT status FROM run_steps WHERE run_id = %s ORDER BY step_index",
                                             [run_id]).fetchall()] == ["succeeded", "failed", "skipped"]


@responses.activate
def test_turning_the_switch_off_forgets_that_automations_outputs_only(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    other = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock)
    forgotten = automation(intake_db, t.client_id, STORED)
    kept = automation(intake_db, t.client_id, STORED)
    theirs = automation(intake_db, other.client_id, STORED)
    runs = {a: start(rt, c, a) for c, a in ((t.client_id, forgotten), (t.client_id, kept), (other.client_id, theirs))}
    for (client_id, automation_id) in ((t.client_id, forgotten), (t.client_id, kept), (other.client_id, theirs)):
        assert execute_run(rt, client_id=client_id, run_id=runs[automation_id]) == "succeeded"
    with tenant_transaction(intake_db, t.client_id) as conn:  # the intake saves the form with the switch off
        update_automation(conn, client_id=t.client_id, automation_id=forgotten, definition=DIGEST)
    assert [r[1:] for r in sealed_rows(owner_conn, runs[forgotten])] == [(None, None, None)] * 3
    assert all(r[1] for r in sealed_rows(owner_conn, runs[kept]))
    assert all(r[1] for r in sealed_rows(owner_conn, runs[theirs]))
    # A step finishing after the switch went off stores nothing.
    with tenant_transaction(agent_db, t.client_id) as conn:
        assert rt.vault.seal_step_output(conn, client_id=t.client_id, run_id=runs[forgotten], step_index=0,
                                         output={"late": True}) is False
    assert sealed_rows(owner_conn, runs[forgotten])[0][1] is None


def test_the_intake_can_neither_read_nor_write_stored_outputs(intake_db, agent_db, rt, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    for statement in ("SELECT output_ciphertext FROM run_steps",
                      "UPDATE run_steps SET output_ciphertext = NULL, output_nonce = NULL, output_key_id = NULL"):
        with pytest.raises(PermissionDenied), tenant_transaction(intake_db, t.client_id) as conn:
            conn.execute(statement)
    with pytest.raises(PermissionDenied), intake_db.transaction() as conn:
        conn.execute("SELECT * FROM hapex_vault_output_key_census()")


@responses.activate
def test_rotation_moves_stored_outputs_and_drops_only_the_undecryptable(intake_db, agent_db, owner_conn):
    old = runtime_for(agent_db, key=KEY_1)
    t = tenant(old, intake_db, agent_db)
    stand_in_providers(responses.mock)
    runs = [start(old, t.client_id, automation(intake_db, t.client_id, STORED)) for _ in range(3)]
    for run_id in runs:
        assert execute_run(old, client_id=t.client_id, run_id=run_id) == "succeeded"
    owner_conn.execute("UPDATE run_steps SET output_ciphertext = set_byte(output_ciphertext, 3, "
                       "get_byte(output_ciphertext, 3) # 128) WHERE run_id = %s AND step_index = 2", [runs[0]])
    before = {run_id: opened(old, t.client_id, run_id) for run_id in runs}

    rotating = Keyring(KEY_2, [KEY_1])
    with pytest.raises(MissingCredentialKeys, match=r"4 credentials, 9 stored outputs"):
        check_credential_keys(agent_db, Keyring(KEY_2))
    progress = rotation.rotate_credentials(agent_db, rotating, batch_size=4)
    assert (progress.outputs_rotated, progress.outputs_dropped, progress.remaining) == (8, 1, 0)
    again = rotation.rotate_credentials(agent_db, rotating, batch_size=4)
    assert (again.outputs_rotated, again.outputs_dropped) == (0, 0)

    only_new = runtime_for(agent_db, key=KEY_2)
    check_credential_keys(agent_db, only_new.vault.keyring)
    for run_id in runs:
        after = opened(only_new, t.client_id, run_id)
        expected = [o for o in before[run_id] if not o.unreadable]
        assert [(o.step_index, o.output) for o in after] == [(o.step_index, o.output) for o in expected]
    assert {r[1] for run_id in runs for r in sealed_rows(owner_conn, run_id) if r[1]} == {
        only_new.vault.keyring.primary_key_id}


@responses.activate
def test_the_outputs_route_answers_only_for_the_runs_client(agent_app, api, intake_db, agent_db, owner_conn):
    rt = runtime_of(agent_app, agent_db)
    t = tenant(rt, intake_db, agent_db)
    other = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock, llm_reply="Route summary")
    run_id = start(rt, t.client_id, automation(intake_db, t.client_id, STORED))
    assert execute_run(rt, client_id=t.client_id, run_id=run_id) == "succeeded"
    owner_conn.execute("UPDATE run_steps SET output_ciphertext = set_byte(output_ciphertext, 0, "
                       "get_byte(output_ciphertext, 0) # 1) WHERE run_id = %s AND step_index = 2", [run_id])

    answer = api.get(f"/v1/clients/{t.client_id}/runs/{run_id}/outputs", headers=acting_for(intake_db, t.client_id))
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    body = answer.get_json()
    assert body["run_id"] == str(run_id)
    assert [(o["step_index"], o["capability"]) for o in body["outputs"]] == [
        (0, "gmail.search"), (1, "llm.summarise"), (2, "slack.post_message")]
    assert body["outputs"][1]["output"]["text"] == "Route summary"
    assert body["outputs"][2] == {"step_index": 2, "capability": "slack.post_message", "output": None,
                                  "unreadable": True}
    for client_id, run in ((other.client_id, run_id), (t.client_id, uuid.uuid4())):
        refused = api.get(f"/v1/clients/{client_id}/runs/{run}/outputs", headers=acting_for(intake_db, client_id))
        assert refused.status_code == 404 and refused.get_json()["error"] == "not_found"
        assert "Route summary" not in refused.get_data(as_text=True)
    assert api.get(f"/v1/clients/{t.client_id}/runs/{run_id}/outputs").status_code == 401


def _llm_reply(text):
    return json.dumps({"id": "msg_03", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
                       "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                       "usage": {"input_tokens": 10, "output_tokens": 5}})


@pytest.mark.parametrize("stored", [True, False], ids=["outputs stored", "outputs not stored"])
@responses.activate
def test_a_run_taken_over_while_its_first_worker_still_runs_is_carried_on_by_one_only(
        rt, intake_db, agent_db, owner_conn, stored):
    """A worker whose heartbeat stopped (a SIGTERM stops it before the jobs end) is judged dead and its
    job requeued: worker B takes the run over while worker A is still inside the summary step."""
    t = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock)
    responses.remove(responses.POST, ANTHROPIC)
    run_id = start(rt, t.client_id, automation(intake_db, t.client_id, STORED if stored else DIGEST))
    taken_over = []

    def llm(request):
        if not taken_over:
            taken_over.append("B")
            taken_over[0] = execute_run(rt, client_id=t.client_id, run_id=run_id)  # worker B, meanwhile
        return (200, {}, _llm_reply("summary"))

    responses.mock.add_callback(responses.POST, ANTHROPIC, callback=llm)
    assert execute_run(rt, client_id=t.client_id, run_id=run_id) == "superseded"  # worker A, afterwards
    if stored:  # B resumed from the stored search and finished; A wrote nothing more
        assert taken_over == ["succeeded"]
        assert (len(calls_to(GMAIL + "/messages?")), len(calls_to(ANTHROPIC)), len(calls_to(SLACK_POST))) == (1, 2, 1)
    else:  # B could not resume (the search's output is gone) and failed the run; A did not go on to post
        assert taken_over == ["failed"]
        assert len(calls_to(SLACK_POST)) == 0
    status = owner_conn.execute("SELECT status FROM runs WHERE run_id = %s", [run_id]).fetchone()[0]
    assert status == taken_over[0]


@responses.activate
def test_a_run_taken_over_during_its_first_step_runs_again_from_the_start_once(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock)
    responses.remove(responses.GET, f"{GMAIL}/messages")
    run_id = start(rt, t.client_id, automation(intake_db, t.client_id))  # outputs not stored
    taken_over = []

    def search(request):
        if not taken_over:
            taken_over.append("B")
            taken_over[0] = execute_run(rt, client_id=t.client_id, run_id=run_id)
        return (200, {}, json.dumps({"messages": [{"id": "m1", "threadId": "t1"}], "resultSizeEstimate": 1}))

    responses.mock.add_callback(responses.GET, f"{GMAIL}/messages", callback=search)
    assert execute_run(rt, client_id=t.client_id, run_id=run_id) == "superseded"
    assert taken_over == ["succeeded"]
    assert len(calls_to(SLACK_POST)) == 1


@pytest.mark.parametrize("failure", ["in Python", "in the database"])
@responses.activate
def test_a_failure_to_store_an_output_keeps_the_steps_record(rt, intake_db, agent_db, owner_conn, monkeypatch, caplog,
                                                              failure):

    t = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock)

    def fails(conn, **kwargs):
        if failure == "in Python":
            raise OutputTooLarge()
        conn.execute("SELECT 1 / 0")  # the transaction is aborted unless this was inside a savepoint

    monkeypatch.setattr(rt.vault, "seal_step_output", fails)
    run_id = start(rt, t.client_id, automation(intake_db, t.client_id, STORED))
    assert execute_run(rt, client_id=t.client_id, run_id=run_id) == "succeeded"
    assert [r[1] for r in sealed_rows(owner_conn, run_id)] == [None] * 3
    assert owner_conn.execute("SELECT status FROM run_steps WHERE run_id = %s", [run_id]).fetchall() == [
        ("succeeded",)] * 3
    assert len(calls_to(SLACK_POST)) == 1
    logged = [r.error_class for r in caplog.records if r.getMessage() == "step output not stored"]
    assert logged == [{"in Python": "OutputTooLarge", "in the database": "DivisionByZero"}[failure]] * 3


@responses.activate
def test_the_definer_role_can_only_empty_an_output_never_write_one(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock)
    run_id = start(rt, t.client_id, automation(intake_db, t.client_id, STORED))
    assert execute_run(rt, client_id=t.client_id, run_id=run_id) == "succeeded"

    def as_definer(statement):
        with owner_conn.transaction():
            owner_conn.execute("SET LOCAL ROLE hapex_definer")
            owner_conn.execute("SELECT set_config('app.client_id', %s, true)", [str(t.client_id)])
            return owner_conn.execute(statement, [run_id]).rowcount

    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        as_definer("UPDATE run_steps SET output_ciphertext = '\\x00112233445566778899aabbccddeeff'::bytea "
                   "WHERE run_id = %s AND step_index = 0")
    assert as_definer("UPDATE run_steps SET output_ciphertext = NULL, output_nonce = NULL, output_key_id = NULL "
                      "WHERE run_id = %s AND step_index = 0") == 1


@responses.activate
def test_the_switch_cannot_be_turned_off_outside_its_clients_transaction_with_outputs_left(
        rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock)
    automation_id = automation(intake_db, t.client_id, STORED)
    run_id = start(rt, t.client_id, automation_id)
    assert execute_run(rt, client_id=t.client_id, run_id=run_id) == "succeeded"
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="store_outputs"), owner_conn.transaction():
        owner_conn.execute("UPDATE automations SET store_outputs = false WHERE automation_id = %s", [automation_id])
    assert owner_conn.execute("SELECT store_outputs FROM automations WHERE automation_id = %s",
                              [automation_id]).fetchone() == (True,)
    assert all(r[1] for r in sealed_rows(owner_conn, run_id))


@responses.activate
def test_a_clients_outputs_come_a_page_at_a_time_and_only_its_own(agent_app, api, intake_db, agent_db):
    rt = runtime_of(agent_app, agent_db)
    t = tenant(rt, intake_db, agent_db)
    other = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock, llm_reply="Paged summary")
    mine = sorted(str(start(rt, t.client_id, automation(intake_db, t.client_id, STORED))) for _ in range(3))
    theirs = start(rt, other.client_id, automation(intake_db, other.client_id, STORED))
    for run_id in mine:
        assert execute_run(rt, client_id=t.client_id, run_id=uuid.UUID(run_id)) == "succeeded"
    assert execute_run(rt, client_id=other.client_id, run_id=theirs) == "succeeded"

    seen, query, headers = [], "limit=4", acting_for(intake_db, t.client_id)
    for _ in range(5):
        answer = api.get(f"/v1/clients/{t.client_id}/outputs?{query}", headers=headers)
        assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
        body = answer.get_json()
        seen += [(o["run_id"], o["step_index"]) for o in body["outputs"]]
        if body["next"] is None:
            break
        query = f"limit=4&after_run={body['next']['after_run']}&after_step={body['next']['after_step']}"
    assert seen == [(run_id, step) for run_id in mine for step in range(3)]  # 9 in pages of 4, 4 and 1
    assert str(theirs) not in {run_id for run_id, _ in seen}

    for bad in ("limit=0", "limit=501", "after_step=1", f"after_run={mine[0]}", "after_run=x&after_step=0",
                "colour=blue"):
        refused = api.get(f"/v1/clients/{t.client_id}/outputs?{bad}", headers=headers)
        assert refused.status_code == 400 and refused.get_json()["error"] == "validation_failed", bad
