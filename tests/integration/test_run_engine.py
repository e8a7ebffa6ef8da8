"""The run engine in one worker: steps in order, tokens refreshed once, failures recorded cleanly."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta

import pytest
import responses

from agent_service.connections.tokens import ensure_access_token
from agent_service.runs.engine import Clock, execute_run
from agent_service.runs.prices import PRICE_VERSION, llm_cost_microusd
from agent_service.runs.triggers import AutomationPaused, BudgetExhausted, start_run
from agent_service.vault import Purpose
from shared.catalog import get_provider
from shared.db import Database, tenant_transaction
from tests.run_fixtures import (
    ANTHROPIC,
    GMAIL,
    SLACK_POST,
    TOKEN_URL,
    automation,
    runtime_for,
    stand_in_providers,
    tenant,
)

# Bounds only a hang: the threads are waited for, however long a busy machine takes.
THREADS_HANG_AFTER = 600


def start(rt, client_id, automation_id, kind="manual"):
    with tenant_transaction(rt.db, client_id) as conn:
        return start_run(conn, client_id=client_id, automation_id=automation_id, trigger_kind=kind)


def run_row(owner_conn, run_id):
    return owner_conn.execute(
        "SELECT status, error_class, error_message FROM runs WHERE run_id = %s", [run_id]).fetchone()


def steps_of(owner_conn, run_id):
    return owner_conn.execute(
        "SELECT step_index, status, attempt_count, error_class, counts FROM run_steps WHERE run_id = %s "
        "ORDER BY step_index", [run_id]).fetchall()


@responses.activate
def test_the_three_step_digest_runs_and_records_metadata_and_costs(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id)
    stand_in_providers(responses.mock, input_tokens=1234, output_tokens=56)
    started = start(rt, t.client_id, automation_id)
    assert owner_conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'hapex:execute_run'"
                              ).fetchone() == (1,)
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "succeeded"
    assert run_row(owner_conn, started.run_id) == ("succeeded", None, None)
    steps = steps_of(owner_conn, started.run_id)
    assert [(s[1], s[2]) for s in steps] == [("succeeded", 1)] * 3
    assert steps[0][4] == {"messages": 2}
    slack = [c for c in responses.calls if c.request.url == SLACK_POST][0]
    assert json.loads(slack.request.body) == {"channel": "#support", "text": "Two customers wrote."}
    assert slack.request.headers["Authorization"] == f"Bearer {t.tokens['slack_access']}"
    gmail = [c for c in responses.calls if c.request.url.startswith(GMAIL)][0]
    assert gmail.request.headers["Authorization"] == f"Bearer {t.tokens['google_access']}"
    events = owner_conn.execute(
        "SELECT source, provider, model, input_tokens, output_tokens, price_version, amount_microusd, calls "
        "FROM cost_events WHERE run_id = %s ORDER BY step_index", [started.run_id]).fetchall()
    assert events == [
        ("provider_call", "google", None, None, None, PRICE_VERSION, 0, 3),
        ("llm", "anthropic", "claude-sonnet-5-5", 1234, 56, PRICE_VERSION,
         llm_cost_microusd("claude-sonnet-5-5", 1234, 56), 1),
        ("provider_call", "slack", None, None, None, PRICE_VERSION, 0, 1),
    ]
    # Each step's events were inserted by its success statement, whose rollup trigger still counted them.
    assert owner_conn.execute("SELECT provider, events, amount_microusd FROM monthly_costs WHERE client_id = %s "
                              "ORDER BY provider", [t.client_id]).fetchall() == [
        ("anthropic", 1, llm_cost_microusd("claude-sonnet-5-5", 1234, 56)), ("google", 1, 0), ("slack", 1, 0)]


@responses.activate
def test_a_finished_run_is_never_executed_twice(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id)
    stand_in_providers(responses.mock)
    started = start(rt, t.client_id, automation_id)
    execute_run(rt, client_id=t.client_id, run_id=started.run_id)
    calls = len(responses.calls)
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "succeeded"
    assert len(responses.calls) == calls


@pytest.mark.parametrize("put_away", ["archived", "deleted"])
@responses.activate
def test_a_run_queued_before_its_automation_was_archived_or_deleted_ends_cancelled_unrun(
        rt, intake_db, agent_db, owner_conn, put_away):
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id)
    stand_in_providers(responses.mock)
    started = start(rt, t.client_id, automation_id)
    owner_conn.execute("UPDATE automations SET status = %s WHERE automation_id = %s", [put_away, automation_id])
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "cancelled"
    status, error_class, message = run_row(owner_conn, started.run_id)
    assert (status, error_class) == ("cancelled", "automation_archived")
    assert "did not run" in message
    assert len(responses.calls) == 0
    assert all(s[1] == "pending" for s in steps_of(owner_conn, started.run_id))
    assert owner_conn.execute("SELECT count(*) FROM credential_access WHERE client_id = %s",
                              [t.client_id]).fetchone() == (0,)
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "cancelled"  # final, never run


@responses.activate
def test_a_token_about_to_expire_is_refreshed_first_and_a_rotated_refresh_token_stored(rt, intake_db, agent_db):
    t = tenant(rt, intake_db, agent_db, google_expires_in=timedelta(seconds=60))
    automation_id = automation(intake_db, t.client_id)
    stand_in_providers(responses.mock)
    responses.post(TOKEN_URL, json={"access_token": "ya29.fresh-canary", "refresh_token": "1//rotated-canary",
                                    "expires_in": 3600, "token_type": "Bearer"})
    started = start(rt, t.client_id, automation_id)
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "succeeded"
    refresh_calls = [c for c in responses.calls if c.request.url == TOKEN_URL]
    assert len(refresh_calls) == 1
    assert f"refresh_token={t.tokens['google_refresh']}" in refresh_calls[0].request.body
    gmail = [c for c in responses.calls if c.request.url.startswith(GMAIL)][0]
    assert gmail.request.headers["Authorization"] == "Bearer ya29.fresh-canary"
    with rt.vault.open_for_step(client_id=t.client_id, connection_id=t.google, purpose=Purpose.REFRESH_TOKEN) as s:
        assert s.reveal() == "1//rotated-canary"


@responses.activate
def test_a_refresh_without_a_new_refresh_token_keeps_the_old_one(rt, intake_db, agent_db):
    t = tenant(rt, intake_db, agent_db, google_expires_in=timedelta(seconds=10))
    responses.post(TOKEN_URL, json={"access_token": "ya29.fresh", "expires_in": 3600, "token_type": "Bearer"})
    assert ensure_access_token(rt, client_id=t.client_id, connection_id=t.google, provider=get_provider("google"))
    with rt.vault.open_for_step(client_id=t.client_id, connection_id=t.google, purpose=Purpose.REFRESH_TOKEN) as s:
        assert s.reveal() == t.tokens["google_refresh"]


def test_ten_steps_needing_an_expiring_token_at_once_refresh_it_once(database, intake_db):
    agent_db = Database(database.agent_dsn, name="test-ten").open()
    agent_db.pool.resize(2, 24)
    try:
        rt = runtime_for(agent_db)
        t = tenant(rt, intake_db, agent_db, google_expires_in=timedelta(seconds=30))
        barrier = threading.Barrier(10)
        results: list[bool] = []
        errors: list[BaseException] = []
        with responses.RequestsMock() as mock:
            mock.post(TOKEN_URL, json={"access_token": "ya29.once", "expires_in": 3600, "token_type": "Bearer"})

            def step() -> None:
                try:
                    barrier.wait()
                    results.append(ensure_access_token(rt, client_id=t.client_id, connection_id=t.google,
                                                       provider=get_provider("google")))
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=step) for _ in range(10)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(THREADS_HANG_AFTER)
            assert not any(thread.is_alive() for thread in threads), "a thread hung"
            token_calls = len([c for c in mock.calls if c.request.url == TOKEN_URL])
        assert not errors
        assert token_calls == 1
        assert sorted(results) == [False] * 9 + [True]
    finally:
        agent_db.close()


@responses.activate
def test_invalid_grant_marks_needs_reauth_pauses_dependents_and_fails_the_run(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db, google_expires_in=timedelta(seconds=10))
    automation_id = automation(intake_db, t.client_id)
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "Token revoked"})
    started = start(rt, t.client_id, automation_id)
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "failed"
    status, error_class, message = run_row(owner_conn, started.run_id)
    assert error_class == "needs_reauth" and "reconnect" in message
    assert owner_conn.execute("SELECT status, status_reason FROM connections WHERE connection_id = %s",
                              [t.google]).fetchone() == ("needs_reauth", "invalid_grant")
    assert owner_conn.execute("SELECT status FROM automations").fetchone() == ("paused",)
    assert [s[1] for s in steps_of(owner_conn, started.run_id)] == ["failed", "skipped", "skipped"]
    with pytest.raises(AutomationPaused):
        start(rt, t.client_id, automation_id)


@responses.activate
def test_a_401_is_answered_by_one_refresh_and_one_retry(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id)
    stand_in_providers(responses.mock)
    responses.replace(responses.GET, f"{GMAIL}/messages", status=401, json={"error": {"code": 401}})
    responses.post(TOKEN_URL, json={"access_token": "ya29.after-401", "expires_in": 3600, "token_type": "Bearer"})
    started = start(rt, t.client_id, automation_id)
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "failed"
    listings = [c for c in responses.calls if c.request.url.startswith(f"{GMAIL}/messages?")]
    assert len(listings) == 2
    assert listings[1].request.headers["Authorization"] == "Bearer ya29.after-401"
    assert len([c for c in responses.calls if c.request.url == TOKEN_URL]) == 1


@responses.activate
def test_a_429_with_retry_after_is_honoured(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id)
    stand_in_providers(responses.mock)
    responses.replace(responses.POST, SLACK_POST, status=429, headers={"Retry-After": "7"}, body="")
    responses.add(responses.POST, SLACK_POST, json={"ok": True, "channel": "C0123456", "ts": "1.2"})
    slept: list[float] = []
    started = start(rt, t.client_id, automation_id)
    status = execute_run(rt, client_id=t.client_id, run_id=started.run_id, clock=Clock(sleep=slept.append))
    assert status == "succeeded"
    assert slept == [7.0]
    assert steps_of(owner_conn, started.run_id)[2][2] == 2


@responses.activate
def test_a_server_error_on_a_step_with_side_effects_is_not_retried(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id)
    stand_in_providers(responses.mock)
    responses.replace(responses.POST, SLACK_POST, status=503, body="")
    started = start(rt, t.client_id, automation_id)
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id, clock=Clock(sleep=lambda s: None)) == "failed"
    assert len([c for c in responses.calls if c.request.url == SLACK_POST]) == 1
    assert "cannot happen twice" in run_row(owner_conn, started.run_id)[2]


@responses.activate
def test_a_reading_step_is_retried_with_backoff_up_to_the_limit(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id)
    stand_in_providers(responses.mock)
    responses.replace(responses.GET, f"{GMAIL}/messages", status=503, body="")
    slept: list[float] = []
    started = start(rt, t.client_id, automation_id)
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id, clock=Clock(sleep=slept.append)) == "failed"
    assert len(slept) == rt.limits.step_attempts - 1
    assert steps_of(owner_conn, started.run_id)[0][2] == rt.limits.step_attempts


@responses.activate
def test_a_run_interrupted_mid_step_is_failed_cleanly_and_nothing_is_done_twice(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id)
    stand_in_providers(responses.mock)
    started = start(rt, t.client_id, automation_id)
    # A worker died after step 0 finished and while step 1 was running.
    owner_conn.execute("UPDATE runs SET status = 'running', started_at = now() WHERE run_id = %s", [started.run_id])
    owner_conn.execute("UPDATE run_steps SET status = 'succeeded', attempt_count = 1 WHERE run_id = %s "
                       "AND step_index = 0", [started.run_id])
    owner_conn.execute("UPDATE run_steps SET status = 'running', attempt_count = 1 WHERE run_id = %s "
                       "AND step_index = 1", [started.run_id])
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "failed"
    assert len(responses.calls) == 0
    assert run_row(owner_conn, started.run_id)[1] == "worker_interrupted"
    assert [s[1] for s in steps_of(owner_conn, started.run_id)] == ["succeeded", "failed", "skipped"]


@responses.activate
def test_a_run_whose_worker_died_before_any_step_runs_from_the_start(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id)
    stand_in_providers(responses.mock)
    started = start(rt, t.client_id, automation_id)
    owner_conn.execute("UPDATE runs SET status = 'running', started_at = now() WHERE run_id = %s", [started.run_id])
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "succeeded"


def test_a_client_over_budget_is_told_and_no_run_starts(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id)
    owner_conn.execute("UPDATE clients SET monthly_budget_microusd = 1000")
    owner_conn.execute("INSERT INTO cost_events (client_id, source, provider, amount_microusd) "
                       "VALUES (%s, 'llm', 'anthropic', 1000)", [t.client_id])
    with pytest.raises(BudgetExhausted):
        start(rt, t.client_id, automation_id)
    assert owner_conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    assert owner_conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone() == (0,)


@responses.activate
def test_a_missing_scope_fails_the_step_before_any_provider_call(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    owner_conn.execute("UPDATE connections SET scopes_granted = %s WHERE connection_id = %s",
                       [["https://www.googleapis.com/auth/gmail.metadata"], t.google])
    automation_id = automation(intake_db, t.client_id)
    started = start(rt, t.client_id, automation_id)
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "failed"
    assert run_row(owner_conn, started.run_id)[1] == "missing_scope"
    assert len(responses.calls) == 0


@responses.activate
def test_canaries_in_emails_llm_reply_and_slack_message_reach_no_log_record_or_error(
        rt, intake_db, agent_db, owner_conn, caplog):
    email_canary = "EMAILCANARY-7c1f"
    reply_canary = "REPLYCANARY-93ab"
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id)
    stand_in_providers(responses.mock, email_body=email_canary, llm_reply=f"Summary {reply_canary}")
    with caplog.at_level(logging.DEBUG):
        started = start(rt, t.client_id, automation_id)
        assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "succeeded"
        # and a failing run whose provider echoes content in its error body
        responses.replace(responses.POST, SLACK_POST, status=400, json={"ok": False, "error": reply_canary})
        failed = start(rt, t.client_id, automation_id)
        assert execute_run(rt, client_id=t.client_id, run_id=failed.run_id) == "failed"
    anthropic_body = [c for c in responses.calls if c.request.url == ANTHROPIC][0].request.body
    assert email_canary.encode() in anthropic_body  # the canary really flowed through the steps
    records = json.dumps(owner_conn.execute("SELECT row_to_json(r) FROM runs r").fetchall(), default=str)
    records += json.dumps(owner_conn.execute("SELECT row_to_json(s) FROM run_steps s").fetchall(), default=str)
    records += json.dumps(owner_conn.execute("SELECT row_to_json(c) FROM cost_events c").fetchall(), default=str)
    logs = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    for canary in (email_canary, reply_canary, t.tokens["google_access"], t.tokens["slack_access"]):
        assert canary not in records
        assert canary not in logs


def test_a_webhook_step_to_loopback_is_refused_unless_the_benchmark_switch_is_set(rt, intake_db, agent_db, owner_conn):
    from agent_service.capabilities.webhook import address_allowed
    from agent_service.config import AgentConfig
    from hapex.localstack.local_secrets import new_encryption_key, new_token

    assert not rt.allow_loopback_webhooks
    switched = AgentConfig.from_env({"AGENT_DATABASE_URL": "postgresql://hapex_agent@localhost/hapex",
                                     "AGENT_SERVICE_TOKEN": new_token(), "AGENT_ADMIN_TOKEN": new_token(),
                                     "CREDENTIAL_ENCRYPTION_KEY": new_encryption_key(),
                                     "HAPEX_BENCH_ALLOW_LOOPBACK_WEBHOOKS": "1", "HAPEX_TEST_MODE": "1"})
    assert switched.allow_loopback_webhooks
    t = tenant(rt, intake_db, agent_db)
    from agent_service.connections.lifecycle import connect_api_key
    from shared.catalog import get_provider as provider
    from shared.secret import Secret

    connect_api_key(agent_db, rt.vault, client_id=t.client_id, provider=provider("webhook"),
                    api_key=Secret("whsec_" + "ab12" * 8), label=None)
    automation_id = automation(intake_db, t.client_id, {
        "name": "Call home", "trigger": {"kind": "manual"},
        "steps": [{"capability": "webhook.post", "input": {"url": "https://127.0.0.1/hook",
                                                           "payload": {"a": 1}}}],
    })
    with responses.RequestsMock() as mock:
        started = start(rt, t.client_id, automation_id)
        assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "failed"
        assert len(mock.calls) == 0
    import ipaddress

    assert not address_allowed(ipaddress.ip_address("127.0.0.1"))
    assert owner_conn.execute("SELECT error_class FROM run_steps WHERE run_id = %s", [started.run_id]
                              ).fetchone()[0] == "webhook_address_refused"


@responses.activate
def test_a_tampered_access_token_fails_the_step_needs_reauth_before_any_provider_call(rt, intake_db, agent_db,
                                                                                      owner_conn):
    """The credential is opened in the transaction that marks the step's attempt: an unreadable one
    marks its connection there, and the run fails cleanly after that commit."""
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id)
    owner_conn.execute("UPDATE credentials SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1) "
                       "WHERE connection_id = %s AND purpose = 'access_token'", [t.google])
    started = start(rt, t.client_id, automation_id)
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "failed"
    assert len(responses.calls) == 0
    assert run_row(owner_conn, started.run_id)[1] == "needs_reauth"
    assert [(s[1], s[2]) for s in steps_of(owner_conn, started.run_id)] == [
        ("failed", 1), ("skipped", 0), ("skipped", 0)]
    assert owner_conn.execute("SELECT status, status_reason FROM connections WHERE connection_id = %s",
                              [t.google]).fetchone() == ("needs_reauth", "credential_unreadable")
    assert owner_conn.execute("SELECT status FROM automations").fetchone() == ("paused",)


@responses.activate
def test_a_credential_under_a_key_not_held_fails_the_step_and_leaves_the_connection_alone(
        rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id)
    owner_conn.execute("UPDATE credentials SET key_id = 'k1:0000000000000000' WHERE connection_id = %s "
                       "AND purpose = 'access_token'", [t.google])
    started = start(rt, t.client_id, automation_id)
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "failed"
    assert len(responses.calls) == 0
    assert run_row(owner_conn, started.run_id)[1] == "credential_key_missing"
    assert owner_conn.execute("SELECT status FROM connections WHERE connection_id = %s", [t.google]
                              ).fetchone() == ("active",)


@responses.activate
def test_each_step_is_audited_once_and_before_its_call(rt, intake_db, agent_db, owner_conn):
    t = tenant(rt, intake_db, agent_db)
    automation_id = automation(intake_db, t.client_id)
    stand_in_providers(responses.mock)
    audited_at_call = []

    def audit_rows():
        return owner_conn.execute("SELECT step_index, purpose, reason FROM credential_access WHERE run_id = %s "
                                  "ORDER BY step_index", [started.run_id]).fetchall()

    def slack(request):
        audited_at_call.extend(audit_rows())
        return (200, {}, json.dumps({"ok": True, "channel": "C0123456", "ts": "1795900000.000100"}))

    responses.remove(responses.POST, SLACK_POST)
    responses.add_callback(responses.POST, SLACK_POST, callback=slack)
    started = start(rt, t.client_id, automation_id)
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "succeeded"
    assert audit_rows() == [(0, "access_token", "run_step"), (2, "access_token", "run_step")]
    assert (2, "access_token", "run_step") in audited_at_call  # committed before Slack was called


def test_a_steps_success_waiting_on_a_takeover_writes_nothing_once_the_run_is_no_longer_its_own(
        rt, intake_db, agent_db, owner_conn):
    """The success statement locks the run before it writes: one that waits while another worker takes
    the run over finds the new execution number and writes nothing (and its caller rolls back)."""
    from agent_service.runs import repository as runs
    from agent_service.runs.engine import PUT_AWAY

    t = tenant(rt, intake_db, agent_db)
    run_id = start(rt, t.client_id, automation(intake_db, t.client_id)).run_id
    with tenant_transaction(agent_db, t.client_id) as conn:  # execution 1 begins its first step
        row = runs.lock_run(conn, run_id=run_id)
        claimed = runs.claim_run(conn, run_id=run_id, automation_id=row["automation_id"],
                                 version=row["automation_version"], put_away=PUT_AWAY)
        runs.start_step(conn, run_id=run_id, step_index=0)
    assert claimed["execution"] == 1
    seen: dict[str, object] = {}

    def first_worker():
        with pytest.raises(RuntimeError), tenant_transaction(agent_db, t.client_id) as conn:
            seen["execution"] = runs.record_step_success(
                conn, client_id=t.client_id, run_id=run_id, execution=1, step_index=0, duration_ms=5,
                counts={"messages": 2}, cost_events=[{"source": "provider_call", "provider": "google", "model": None,
                                                       "input_tokens": None, "output_tokens": None,
                                                       "cache_creation_input_tokens": None,
                                                       "cache_read_input_tokens": None, "price_version": "p",
                                                       "amount_microusd": 0, "calls": 3}],
                connection_id=t.google, run_status="succeeded", error_class=None, error_message=None)
            seen["inside"] = conn.execute(
                "SELECT (SELECT status FROM run_steps WHERE run_id = %s AND step_index = 0), "
                "(SELECT status FROM runs WHERE run_id = %s), "
                "(SELECT count(*) FROM cost_events WHERE run_id = %s)", [run_id, run_id, run_id]).fetchone()
            raise RuntimeError("superseded: roll back")

    with tenant_transaction(agent_db, t.client_id) as conn:  # the takeover holds the run's lock meanwhile
        runs.lock_run(conn, run_id=run_id)
        assert runs.start_run(conn, run_id=run_id) == 2
        worker = threading.Thread(target=first_worker)
        worker.start()
        for _ in range(THREADS_HANG_AFTER * 10):
            waiting = owner_conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).fetchone()[0]
            if waiting:
                break
            worker.join(0.1)
        assert waiting == 1
    worker.join(THREADS_HANG_AFTER)
    assert seen == {"execution": 2, "inside": ("running", "running", 0)}
    assert steps_of(owner_conn, run_id)[0][:3] == (0, "running", 1)
    assert run_row(owner_conn, run_id) == ("running", None, None)


@responses.activate
def test_each_later_step_begins_in_the_commit_of_the_previous_steps_success(rt, intake_db, agent_db, owner_conn):
    """now() is the transaction's start: equal times say which records one commit wrote. The run's
    opening begins its first step; each step's success begins the next (its access recorded there)."""
    t = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock)
    started = start(rt, t.client_id, automation(intake_db, t.client_id))
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "succeeded"
    run_started, run_finished = owner_conn.execute(
        "SELECT started_at, finished_at FROM runs WHERE run_id = %s", [started.run_id]).fetchone()
    steps = owner_conn.execute("SELECT started_at, finished_at FROM run_steps WHERE run_id = %s ORDER BY step_index",
                               [started.run_id]).fetchall()
    accessed = owner_conn.execute("SELECT step_index, accessed_at FROM credential_access WHERE run_id = %s "
                                  "ORDER BY step_index", [started.run_id]).fetchall()
    assert steps[0][0] == run_started and accessed[0] == (0, run_started)
    assert steps[1][0] == steps[0][1] and steps[2][0] == steps[1][1]
    assert accessed[1] == (2, steps[1][1])  # step 2's credential opened in step 1's success (the LLM has no connection)
    assert steps[2][1] == run_finished
    assert len({run_started, steps[0][1], steps[1][1], steps[2][1]}) == 4  # four commits in all


@responses.activate
def test_a_defect_beginning_the_next_step_leaves_the_previous_steps_success_and_costs_recorded(
        rt, intake_db, agent_db, owner_conn, monkeypatch):
    """The next step begins in the commit of this step's success; should beginning it fail (a defect of
    ours, not a database outage), this step's success, whose effect has happened, and its costs are still
    recorded, and the failure is the next step's own."""
    from agent_service.runs import engine

    t = tenant(rt, intake_db, agent_db)
    stand_in_providers(responses.mock)
    started = start(rt, t.client_id, automation(intake_db, t.client_id))
    resolve = engine.resolve_step_input

    def defective(step, outputs, trigger=None):
        if step["capability"] == "slack.post_message":
            raise KeyError("text")
        return resolve(step, outputs, trigger)

    monkeypatch.setattr(engine, "resolve_step_input", defective)
    assert execute_run(rt, client_id=t.client_id, run_id=started.run_id) == "failed"
    assert [s[:4] for s in steps_of(owner_conn, started.run_id)] == [
        (0, "succeeded", 1, None), (1, "succeeded", 1, None), (2, "skipped", 0, None)]
    status, error_class, message = run_row(owner_conn, started.run_id)
    assert (status, error_class, message.split(" (")[0]) == ("failed", "internal_error", "Step 3")
    assert owner_conn.execute("SELECT step_index, source FROM cost_events WHERE run_id = %s ORDER BY step_index",
                              [started.run_id]).fetchall() == [(0, "provider_call"), (1, "llm")]
    assert not [c for c in responses.calls if c.request.url == SLACK_POST]
