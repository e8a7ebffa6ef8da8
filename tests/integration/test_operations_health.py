"""The connection health sweep: what is due is refreshed, a flaky provider is not a broken one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import responses

from agent_service.connections.health import (
    BROKEN_REASON,
    FAILING_REASON,
    DueConnection,
    Outcome,
    check_connection,
    sweep_connections,
)
from agent_service.vault import Purpose
from shared.automations.repository import create_automation, set_status
from shared.db import tenant_transaction
from shared.secret import Secret
from tests.factories import make_client, make_connection
from tests.run_fixtures import DIGEST, TOKEN_URL, G, automation, connect

SLACK_TOKEN_URL = "https://slack.com/api/oauth.v2.access"
SCHEDULED = {**DIGEST, "trigger": {"kind": "schedule", "cron": "0 8 * * *", "timezone": "UTC"}}


def tomorrow_at(hour: int) -> datetime:
    """A moment on a day of its own, after anything the database has stamped with now()."""
    day = datetime.now(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def google_client(rt, intake_db, agent_db, *, expires_in=timedelta(hours=1), name="Acme Bakery"):
    client_id = make_client(intake_db, name=name)
    connection_id, tokens = connect(rt, agent_db, client_id, "google", [G + "gmail.readonly"],
                                    expires_in=expires_in)
    return client_id, connection_id, tokens


def idle_for(owner_conn, connection_id, days=30):
    """A connection authorised long ago whose refresh token nothing has used since."""
    owner_conn.execute(
        "UPDATE connections SET created_at = now() - make_interval(days => %s), "
        "scopes_granted_at = now() - make_interval(days => %s) WHERE connection_id = %s",
        [days, days, connection_id])


def scheduled_soon(intake_db, owner_conn, client_id, definition=SCHEDULED, minutes=5):
    automation_id = automation(intake_db, client_id, definition)
    owner_conn.execute("UPDATE automations SET next_run_at = now() + make_interval(mins => %s) "
                       "WHERE automation_id = %s", [minutes, automation_id])
    return automation_id


def refreshed_tokens(calls, url=TOKEN_URL):
    return [parse_qs(call.request.body)["refresh_token"][0] for call in calls if call.request.url == url]


def connection_row(owner_conn, connection_id):
    return owner_conn.execute(
        "SELECT status, status_reason, health_failures, health_failure_day, refresh_proven_at, health_recovered_at "
        "FROM connections WHERE connection_id = %s", [connection_id]).fetchone()


def token_answer(access="ya29.swept"):
    return {"access_token": access, "expires_in": 3600, "token_type": "Bearer"}


@responses.activate
def test_the_sweep_refreshes_what_is_due_and_nothing_else(rt, intake_db, agent_db, owner_conn):
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(SLACK_TOKEN_URL, json={"ok": True, **token_answer("xoxe.swept")})
    # Due: expires in minutes, and a scheduled automation that needs Google runs in five.
    expiring, expiring_google, expiring_tokens = google_client(rt, intake_db, agent_db,
                                                               expires_in=timedelta(minutes=4))
    scheduled_soon(intake_db, owner_conn, expiring)
    # Due: its refresh token has not been used for a month.
    idle, idle_google, idle_tokens = google_client(rt, intake_db, agent_db, expires_in=timedelta(days=-20))
    idle_for(owner_conn, idle_google)
    # Not due: expiring, but only a manual automation needs it (a run refreshes it when it comes).
    manual, _, _ = google_client(rt, intake_db, agent_db, expires_in=timedelta(minutes=4))
    automation(intake_db, manual)
    # Not due: expiring, and its schedule is hours away.
    later, _, _ = google_client(rt, intake_db, agent_db, expires_in=timedelta(minutes=4))
    scheduled_soon(intake_db, owner_conn, later, minutes=300)
    # Not due: a scheduled automation is near, but it needs Slack, whose token is fresh for a year.
    slack_client = make_client(intake_db)
    connect(rt, agent_db, slack_client, "slack", ["chat:write"], expires_in=timedelta(days=365))
    connect(rt, agent_db, slack_client, "google", [G + "gmail.readonly"], expires_in=timedelta(hours=6))
    scheduled_soon(intake_db, owner_conn, slack_client)
    # Not due: old, but with no refresh token to prove, or already waiting for its client.
    no_refresh = make_client(intake_db)
    bare, _ = connect(rt, agent_db, no_refresh, "google", [G + "gmail.readonly"], refresh=False,
                      expires_in=timedelta(days=-20))
    idle_for(owner_conn, bare)
    broken, broken_google, _ = google_client(rt, intake_db, agent_db, expires_in=timedelta(days=-20))
    idle_for(owner_conn, broken_google)
    owner_conn.execute("UPDATE connections SET status = 'needs_reauth' WHERE connection_id = %s", [broken_google])

    assert sweep_connections(rt) == {"refreshed": 2}

    assert sorted(refreshed_tokens(responses.calls)) == sorted([expiring_tokens["refresh"], idle_tokens["refresh"]])
    assert refreshed_tokens(responses.calls, SLACK_TOKEN_URL) == []
    for connection_id in (expiring_google, idle_google):
        status, reason, failures, _, proven, _ = connection_row(owner_conn, connection_id)
        assert (status, reason, failures) == ("active", None, 0)
        assert proven is not None
        with rt.vault.open_for_step(client_id=expiring if connection_id == expiring_google else idle,
                                    connection_id=connection_id, purpose=Purpose.ACCESS_TOKEN) as token:
            assert token.reveal() == "ya29.swept"
    # Once refreshed, neither is due again.
    assert sweep_connections(rt) == {}
    assert len(responses.calls) == 2


@responses.activate
def test_a_transient_failure_does_not_break_a_connection_and_counts_once_a_day(rt, intake_db, agent_db, owner_conn):
    client_id, google, _ = google_client(rt, intake_db, agent_db, expires_in=timedelta(days=-20))
    automation_id = automation(intake_db, client_id)
    idle_for(owner_conn, google)
    responses.post(TOKEN_URL, status=503, json={"error": "backend_error"})
    morning, evening = tomorrow_at(1), tomorrow_at(20)

    assert sweep_connections(rt, now=morning) == {"failed": 1}
    assert sweep_connections(rt, now=evening) == {"failed": 1}

    status, reason, failures, day, _, _ = connection_row(owner_conn, google)
    assert (status, reason, failures, day) == ("active", FAILING_REASON, 1, morning.date())
    assert owner_conn.execute("SELECT status FROM automations WHERE automation_id = %s",
                              [automation_id]).fetchone() == ("enabled",)
    assert owner_conn.execute("SELECT count(*) FROM notifications").fetchone() == (0,)
    assert len(responses.calls) == 2


@responses.activate
def test_a_failing_provider_is_retried_at_most_once_an_hour(rt, intake_db, agent_db, owner_conn):
    _, google, _ = google_client(rt, intake_db, agent_db, expires_in=timedelta(days=-20))
    idle_for(owner_conn, google)
    responses.post(TOKEN_URL, status=503)
    assert sweep_connections(rt, now=tomorrow_at(1)) == {"failed": 1}
    assert sweep_connections(rt, now=tomorrow_at(1) + timedelta(minutes=10)) == {}
    assert len(responses.calls) == 1


@responses.activate
def test_failures_on_four_distinct_days_break_the_connection_and_pause_what_needs_it(rt, intake_db, agent_db,
                                                                                    owner_conn):
    client_id, google, _ = google_client(rt, intake_db, agent_db, expires_in=timedelta(days=-20))
    automation_id = automation(intake_db, client_id)
    idle_for(owner_conn, google)
    responses.post(TOKEN_URL, status=429, headers={"Retry-After": "3600"})
    first = tomorrow_at(2)

    for day in range(3):
        assert sweep_connections(rt, now=first + timedelta(days=day)) == {"failed": 1}
        assert connection_row(owner_conn, google)[:3] == ("active", FAILING_REASON, day + 1)
    assert sweep_connections(rt, now=first + timedelta(days=3)) == {"broken": 1}

    status, reason, failures, _, _, _ = connection_row(owner_conn, google)
    assert (status, reason, failures) == ("needs_reauth", BROKEN_REASON, 4)
    assert owner_conn.execute("SELECT status, paused_reason FROM automations WHERE automation_id = %s",
                              [automation_id]).fetchone() == ("paused", "Google Workspace needs to be reconnected.")
    kinds = owner_conn.execute("SELECT kind FROM notifications WHERE client_id = %s ORDER BY kind",
                               [client_id]).fetchall()
    assert kinds == [("automation_paused",), ("connection_needs_reauth",)]
    # Broken, it is no longer swept: its client has to reconnect it.
    assert sweep_connections(rt, now=first + timedelta(days=4)) == {}


@responses.activate
def test_a_connection_that_recovers_says_so_and_starts_counting_afresh(rt, intake_db, agent_db, owner_conn):
    _, google, _ = google_client(rt, intake_db, agent_db, expires_in=timedelta(days=-20))
    idle_for(owner_conn, google)
    first = tomorrow_at(3)
    responses.post(TOKEN_URL, status=502)
    for day in range(3):
        sweep_connections(rt, now=first + timedelta(days=day))
    assert connection_row(owner_conn, google)[2] == 3

    responses.replace(responses.POST, TOKEN_URL, json=token_answer("ya29.back"))
    assert sweep_connections(rt, now=first + timedelta(days=3)) == {"recovered": 1}

    status, reason, failures, day, proven, recovered = connection_row(owner_conn, google)
    assert (status, reason, failures, day) == ("active", None, 0, None)
    assert proven == recovered == first + timedelta(days=3)
    # A later outage counts from one again: it takes four more days to break it.
    idle_for(owner_conn, google)
    owner_conn.execute("UPDATE connections SET refresh_proven_at = NULL WHERE connection_id = %s", [google])
    responses.replace(responses.POST, TOKEN_URL, status=503)
    assert sweep_connections(rt, now=first + timedelta(days=4)) == {"failed": 1}
    assert connection_row(owner_conn, google)[:3] == ("active", FAILING_REASON, 1)


@responses.activate
def test_a_reconnected_connection_starts_counting_afresh(rt, intake_db, agent_db, owner_conn):
    client_id, google, _ = google_client(rt, intake_db, agent_db, expires_in=timedelta(days=-20))
    responses.post(TOKEN_URL, status=503)
    first = tomorrow_at(4)
    due = DueConnection(client_id, google, "google", None, "unproven")
    for day in range(3):
        assert check_connection(rt, due, now=first + timedelta(days=day)) is Outcome.FAILED
    # The client reconnects (a new grant) after the third failure.
    owner_conn.execute("UPDATE connections SET scopes_granted_at = %s WHERE connection_id = %s",
                       [first + timedelta(days=2, hours=1), google])
    assert check_connection(rt, due, now=first + timedelta(days=3)) is Outcome.FAILED
    assert connection_row(owner_conn, google)[:3] == ("active", FAILING_REASON, 1)


@responses.activate
def test_a_refused_grant_breaks_the_connection_at_once(rt, intake_db, agent_db, owner_conn):
    client_id, google, _ = google_client(rt, intake_db, agent_db, expires_in=timedelta(days=-20))
    automation_id = automation(intake_db, client_id)
    idle_for(owner_conn, google)
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "Token revoked"})

    assert sweep_connections(rt) == {"needs_reauth": 1}

    assert connection_row(owner_conn, google)[:2] == ("needs_reauth", "invalid_grant")
    assert owner_conn.execute("SELECT status FROM automations WHERE automation_id = %s",
                              [automation_id]).fetchone() == ("paused",)


@responses.activate
def test_a_connection_refreshed_by_a_run_meanwhile_counts_as_proven(rt, intake_db, agent_db, owner_conn):
    client_id, google, _ = google_client(rt, intake_db, agent_db, expires_in=timedelta(minutes=30))
    seen = owner_conn.execute("SELECT access_token_expires_at FROM connections WHERE connection_id = %s",
                              [google]).fetchone()[0]
    owner_conn.execute("UPDATE connections SET access_token_expires_at = now() + interval '2 hours' "
                       "WHERE connection_id = %s", [google])
    due = DueConnection(client_id, google, "google", seen, "expiring")
    assert check_connection(rt, due, now=datetime.now(UTC)) is Outcome.REFRESHED
    assert len(responses.calls) == 0
    assert connection_row(owner_conn, google)[4] is not None


def test_a_provider_without_an_oauth_client_here_is_skipped_not_broken(rt, intake_db, agent_db, owner_conn):
    client_id = make_client(intake_db)
    notion = make_connection(agent_db, client_id, provider="notion")
    with tenant_transaction(agent_db, client_id) as conn:
        rt.vault.store(conn, client_id=client_id, connection_id=notion, purpose=Purpose.REFRESH_TOKEN,
                       secret=Secret("notion-refresh-canary"))
    idle_for(owner_conn, notion)
    assert sweep_connections(rt) == {"skipped": 1}
    assert connection_row(owner_conn, notion)[:3] == ("active", None, 0)


def test_only_enabled_schedules_make_a_token_due(rt, intake_db, agent_db, owner_conn):
    client_id, _, _ = google_client(rt, intake_db, agent_db, expires_in=timedelta(minutes=4))
    with tenant_transaction(intake_db, client_id) as conn:
        automation_id = create_automation(conn, client_id=client_id, definition=SCHEDULED)
        set_status(conn, automation_id=automation_id, status="disabled")
    owner_conn.execute("UPDATE automations SET next_run_at = now() + interval '5 minutes'")
    assert sweep_connections(rt) == {}
