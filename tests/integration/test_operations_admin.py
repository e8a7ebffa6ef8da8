"""The operator's reports: only the admin token opens them, they add up across clients, and they
name clients by id and name only, never an email address or anything a client wrote."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from agent_service.admin.terminal import run_admin_command
from agent_service.config import ReportsConfig
from hapex.cli import main
from shared.db import PermissionDenied

# The agent app (fixtures agent_app and api), its tokens and its routes: tests/agent_api.py.
from tests.agent_api import ADMIN, PREVIOUS, SERVICE, admin_routes, bearer, client_routes

TODAY = datetime.now(UTC).date()


def served(app, *, admin: bool) -> list[tuple[str, str]]:
    return admin_routes(app) if admin else client_routes(app)


ADMIN_REPORTS = ["/v1/admin/clients", "/v1/admin/connections/needs-reauth", "/v1/admin/automations/failing",
                 "/v1/admin/queue"]


def test_the_service_tokens_get_403_on_every_admin_route(api, agent_app):
    routes = served(agent_app, admin=True)
    assert {path for _, path in routes} >= set(ADMIN_REPORTS)
    for token in (SERVICE, PREVIOUS):
        for method, path in routes:
            response = api.open(path, method=method, headers=bearer(token))
            assert response.status_code == 403, (method, path)
            assert response.json["error"] == "forbidden"
    for path in ADMIN_REPORTS:
        assert api.get(path).status_code == 401


def test_the_admin_token_gets_403_on_every_client_route(api, agent_app):
    routes = served(agent_app, admin=False)
    assert len(routes) >= 6
    for method, path in routes:
        assert api.open(path, method=method, headers=bearer(ADMIN)).status_code == 403, (method, path)


def test_the_admin_token_opens_every_report(api):
    for path in ADMIN_REPORTS:
        assert api.get(path, headers=bearer(ADMIN)).status_code == 200, path


# --- three clients, seen by the owner as they are ----------------------------------------


def at(days_ago: int, hour: int = 12) -> datetime:
    day = TODAY - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture
def three_clients(owner_conn):
    """Clients with runs and costs inside and outside a period, made as the owner sees rows."""
    ids = {name: uuid.uuid4() for name in ("bakery", "garage", "florist")}
    for name, client_id in ids.items():
        owner_conn.execute("INSERT INTO clients (client_id, name) VALUES (%s, %s)", [client_id, name.title()])
        owner_conn.execute("INSERT INTO users (client_id, email, password_hash) VALUES (%s, %s, 'x')",
                           [client_id, f"owner@{name}-secret-mail.test"])
    automations = {}
    for name in ("bakery", "garage"):
        automations[name] = owner_conn.execute(
            "INSERT INTO automations (client_id, name, status) VALUES (%s, %s, 'enabled') RETURNING automation_id",
            [ids[name], f"{name} private automation name"]).fetchone()[0]

    def run(name: str, status: str, when: datetime, error_class: str | None = None) -> None:
        owner_conn.execute(
            "INSERT INTO runs (client_id, automation_id, automation_version, trigger_kind, status, error_class, "
            "error_message, queued_at, finished_at) VALUES (%s, %s, 1, 'manual', %s, %s, %s, %s, %s)",
            [ids[name], automations[name], status, error_class,
             "private run message" if error_class else None, when, when + timedelta(minutes=1)])

    def cost(name: str, amount: int, when: datetime) -> None:
        owner_conn.execute("INSERT INTO cost_events (client_id, source, provider, amount_microusd, occurred_at) "
                           "VALUES (%s, 'llm', 'anthropic', %s, %s)", [ids[name], amount, when])

    # bakery: 4 runs in the period (1 failed), one older failed run outside it.
    for status in ("succeeded", "succeeded", "succeeded"):
        run("bakery", status, at(2))
    run("bakery", "failed", at(1), "provider_unavailable")
    run("bakery", "failed", at(40), "old_failure")
    cost("bakery", 1_500_000, at(2))
    cost("bakery", 250_000, at(1))
    cost("bakery", 9_000_000, at(40))
    # garage: 2 runs, both failed; its connection needs reconnecting; its automation paused.
    run("garage", "failed", at(3), "needs_reauth")
    run("garage", "failed", at(0, 0), "needs_reauth")
    cost("garage", 40_000, at(3))
    owner_conn.execute("UPDATE automations SET status = 'paused', paused_reason = 'Google Workspace needs to be "
                       "reconnected.' WHERE automation_id = %s", [automations["garage"]])
    connection = owner_conn.execute(
        "INSERT INTO connections (client_id, provider, auth_kind, status, status_reason, account_label, "
        "health_failures) VALUES (%s, 'google', 'oauth2', 'needs_reauth', 'provider_failing_for_days', "
        "'garage-private-label', 4) RETURNING connection_id", [ids["garage"]]).fetchone()[0]
    owner_conn.execute("INSERT INTO connections (client_id, provider, auth_kind) VALUES (%s, 'slack', 'oauth2')",
                       [ids["bakery"]])
    # florist: nothing at all.
    return ids, automations, connection


def period(days: int = 7) -> dict[str, str]:
    return {"since": (TODAY - timedelta(days=days - 1)).isoformat(), "until": TODAY.isoformat()}


def test_the_client_report_adds_up_across_clients(api, three_clients):
    ids, _, _ = three_clients
    response = api.get("/v1/admin/clients", query_string=period(), headers=bearer(ADMIN))
    assert response.status_code == 200
    assert response.json["since"] == period()["since"] and response.json["until"] == TODAY.isoformat()
    by_name = {row["name"]: row for row in response.json["clients"]}
    assert by_name == {
        "Bakery": {"client_id": str(ids["bakery"]), "name": "Bakery", "runs": 4, "failed_runs": 1,
                   "failure_rate": 0.25, "cost_microusd": 1_750_000},
        "Garage": {"client_id": str(ids["garage"]), "name": "Garage", "runs": 2, "failed_runs": 2,
                   "failure_rate": 1.0, "cost_microusd": 40_000},
        "Florist": {"client_id": str(ids["florist"]), "name": "Florist", "runs": 0, "failed_runs": 0,
                    "failure_rate": None, "cost_microusd": 0},
    }
    assert [row["name"] for row in response.json["clients"]] == ["Bakery", "Garage", "Florist"]


def test_a_wider_period_takes_in_older_runs_and_costs(api, three_clients):
    response = api.get("/v1/admin/clients", query_string=period(60), headers=bearer(ADMIN))
    bakery = next(row for row in response.json["clients"] if row["name"] == "Bakery")
    assert (bakery["runs"], bakery["failed_runs"], bakery["cost_microusd"]) == (5, 2, 10_750_000)


def test_without_a_period_the_reports_cover_the_last_30_days(api, three_clients):
    response = api.get("/v1/admin/clients", headers=bearer(ADMIN))
    assert response.json["since"] == (TODAY - timedelta(days=29)).isoformat()
    assert response.json["until"] == TODAY.isoformat()


def test_the_reauth_report_lists_connections_waiting_for_their_client(api, three_clients):
    ids, _, connection = three_clients
    response = api.get("/v1/admin/connections/needs-reauth", headers=bearer(ADMIN))
    assert response.status_code == 200
    [row] = response.json["connections"]
    assert {k: row[k] for k in ("client_id", "client_name", "connection_id", "provider", "status_reason",
                                "health_failures")} == {
        "client_id": str(ids["garage"]), "client_name": "Garage", "connection_id": str(connection),
        "provider": "google", "status_reason": "provider_failing_for_days", "health_failures": 4}


def test_the_failing_report_lists_automations_with_failures_in_the_period_or_paused(api, three_clients):
    ids, automations, _ = three_clients
    response = api.get("/v1/admin/automations/failing", query_string=period(), headers=bearer(ADMIN))
    rows = [{k: row[k] for k in ("client_id", "automation_id", "status", "runs", "failed_runs", "last_error_class")}
            for row in response.json["automations"]]
    assert rows == [
        {"client_id": str(ids["garage"]), "automation_id": str(automations["garage"]), "status": "paused",
         "runs": 2, "failed_runs": 2, "last_error_class": "needs_reauth"},
        {"client_id": str(ids["bakery"]), "automation_id": str(automations["bakery"]), "status": "enabled",
         "runs": 4, "failed_runs": 1, "last_error_class": "provider_unavailable"},
    ]


def test_no_report_names_an_email_or_anything_a_client_wrote(api, three_clients):
    text = "".join(api.get(path, query_string=period(60) if "reauth" not in path and "queue" not in path else None,
                           headers=bearer(ADMIN)).get_data(as_text=True) for path in ADMIN_REPORTS)
    for private in ("secret-mail", "private automation name", "private run message", "garage-private-label",
                    "reconnected."):
        assert private not in text


def test_the_queue_report_counts_jobs_and_shows_worker_heartbeats(api, owner_conn):
    alive = owner_conn.execute("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id").fetchone()[0]
    gone = owner_conn.execute("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '10 "
                              "minutes') RETURNING id").fetchone()[0]
    for queue, status, worker in (("runs", "todo", None), ("runs", "todo", None), ("runs", "doing", alive),
                                  ("maintenance", "failed", None)):
        job = owner_conn.execute("INSERT INTO procrastinate_jobs (queue_name, task_name, status, worker_id) "
                                 "VALUES (%s, 'hapex:x', %s, %s) RETURNING id", [queue, status, worker]).fetchone()[0]
        owner_conn.execute("INSERT INTO procrastinate_events (job_id, type, at) VALUES (%s, 'deferred', "
                           "now() - interval '5 minutes')", [job])
    response = api.get("/v1/admin/queue", headers=bearer(ADMIN))
    assert response.status_code == 200
    jobs = {(row["queue_name"], row["status"]): row for row in response.json["jobs"]}
    assert {key: row["jobs"] for key, row in jobs.items()} == {
        ("maintenance", "failed"): 1, ("runs", "doing"): 1, ("runs", "todo"): 2}
    assert jobs[("runs", "todo")]["oldest_waiting_since"] is not None
    assert jobs[("runs", "doing")]["oldest_waiting_since"] is None
    workers = {row["worker_id"]: row for row in response.json["workers"]}
    assert (workers[alive]["stale"], workers[alive]["jobs_running"]) == (False, 1)
    assert workers[gone]["stale"] is True and workers[gone]["seconds_since_heartbeat"] >= 590


@pytest.mark.parametrize("query", [
    {"since": "2026-13-01"},
    {"since": "yesterday"},
    {"until": "2026-02-30"},
    {"since": "2026-03-10", "until": "2026-03-01"},
    {"since": "2024-01-01", "until": "2026-01-01"},
    {"from": "2026-01-01"},
    {"until": "0001-01-01"},
    {"until": "9999-12-31"},
    {"since": "0001-01-01", "until": "0001-01-01"},
    {"since": "9999-12-31", "until": "9999-12-31"},
])
def test_a_bad_period_is_a_400_in_the_error_shape(api, query):
    response = api.get("/v1/admin/clients", query_string=query, headers=bearer(ADMIN))
    assert response.status_code == 400
    assert response.json["error"] == "validation_failed"
    assert set(response.json) == {"error", "message", "fields"}
    assert api.get("/v1/admin/automations/failing", query_string=query, headers=bearer(ADMIN)).status_code == 400


def test_reports_without_a_period_refuse_query_arguments(api):
    response = api.get("/v1/admin/queue", query_string={"since": "2026-01-01"}, headers=bearer(ADMIN))
    assert response.status_code == 400 and response.json["error"] == "validation_failed"


def test_row_security_still_hides_every_client_from_the_agent_role_outside_the_functions(agent_db, three_clients):
    with agent_db.transaction() as conn:
        for table in ("clients", "runs", "cost_events", "connections", "automations"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table  # noqa: S608


def test_the_intake_role_cannot_run_the_operator_reports(intake_db):
    for call in ("hapex_admin_client_report(now(), now())", "hapex_admin_reauth_connections()",
                 "hapex_admin_failing_automations(now(), now())", "hapex_notice_recipients(gen_random_uuid())",
                 "hapex_pending_notifications(1)"):
        with pytest.raises(PermissionDenied), intake_db.transaction() as conn:
            conn.execute(f"SELECT * FROM {call}")  # noqa: S608


def test_the_agent_lists_a_clients_notice_recipients_only_in_that_clients_transaction(agent_db, intake_db):
    from shared.db import tenant_transaction
    from tests.factories import make_client, make_user

    mine, theirs = make_client(intake_db), make_client(intake_db)
    make_user(intake_db, mine, email="owner-mine@example.com")
    make_user(intake_db, theirs, email="owner-theirs@example.com")
    with tenant_transaction(agent_db, mine) as conn:
        listed = [r[0] for r in conn.execute("SELECT email FROM hapex_notice_recipients(%s)", [mine])]
        foreign = conn.execute("SELECT email FROM hapex_notice_recipients(%s)", [theirs]).fetchall()
    assert listed == ["owner-mine@example.com"]
    assert foreign == []
    with agent_db.transaction() as conn:  # no client at all
        assert conn.execute("SELECT email FROM hapex_notice_recipients(%s)", [mine]).fetchall() == []

def test_no_role_can_call_the_notice_triggers_directly(database):
    for dsn in (database.agent_dsn, database.intake_dsn):
        with psycopg.connect(dsn, autocommit=True) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT hapex_notice_automation_paused()")


# --- the same reports in a terminal ------------------------------------------------------


def test_hapex_admin_prints_the_reports_the_api_gives(api, database, three_clients, capsys, monkeypatch):
    monkeypatch.setenv("AGENT_DATABASE_URL", database.agent_dsn)
    query = period()
    assert main(["admin", "clients", "--since", query["since"], "--until", query["until"], "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == api.get("/v1/admin/clients", query_string=query, headers=bearer(ADMIN)).json

    assert main(["admin", "clients", "--since", query["since"]]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == f"Clients from {query['since']} to {TODAY.isoformat()} (UTC, inclusive)"
    assert table[1].split() == ["client_id", "name", "runs", "failed", "failure", "rate", "cost"]
    assert table[2].split()[1:] == ["Bakery", "4", "1", "25%", "$1.75"]

    assert main(["admin", "reauth"]) == 0
    assert "provider_failing_for_days" in capsys.readouterr().out
    assert main(["admin", "failing", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["automations"]) == 2
    assert main(["admin", "queue"]) == 0
    assert "No worker has registered" in capsys.readouterr().out


def test_hapex_admin_refuses_a_bad_date_and_names_the_option(database, capsys):
    code = run_admin_command(__import__("sys").stdout, __import__("sys").stderr, "clients", since="2026-02-30",
                             config=ReportsConfig(database.agent_dsn))
    assert code == 2
    assert "--since" in capsys.readouterr().err
