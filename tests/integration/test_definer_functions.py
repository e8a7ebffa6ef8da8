"""Every SECURITY DEFINER function, reviewed: who may call it, and that no argument widens it.

The list is checked against pg_proc, so a new definer function without an entry here fails
`test_every_definer_function_is_reviewed_here` until someone reviews it and writes its test.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from shared.db import tenant_transaction
from tests.factories import make_automation, make_client, make_session

INTAKE, AGENT, NOBODY = frozenset({"hapex_intake"}), frozenset({"hapex_agent"}), frozenset()

# Who may call each function, and why its arguments cannot make it do more than it says.
REVIEWED: dict[str, tuple[frozenset[str], str]] = {
    "hapex_find_login": (AGENT, "an exact email; one user's hash for the agent to check a password against "
                                "(the intake's until 0025: test_sign_in_proof.py)"),
    "hapex_find_session": (INTAKE, "an exact hash; the session it names or nothing"),
    "hapex_find_webhook": (INTAKE, "an exact hash; only an enabled webhook automation's ids"),
    # Migration 0016 (the client's own proof).
    "hapex_session_proves_client": (AGENT, "yes or no for one secret and client: live, under 30 days"),
    "hapex_webhook_proves_client": (AGENT, "yes or no for one secret, client and enabled webhook automation"),
    "hapex_touch_session": (INTAKE, "one session by exact hash, extended within 1 day idle and 30 days in all"),
    "hapex_end_session": (INTAKE, "one session by exact hash"),
    "hapex_set_webhook_secret": (INTAKE, "only with a live session secret of the automation's own client, "
                                         "under 30 days old (test below)"),
    # The agent's alone since 0025: it calls it only after checking the password (and the code with a
    # pending sign-in's ticket), agent_service/sign_in; the intake cannot (test_sign_in_proof.py).
    "hapex_start_session": (AGENT, "expiry capped at 1 day; called only after the agent checked the password"),
    "hapex_prune_expired_sessions": (AGENT, "no argument; its policy admits expired rows only"),
    "hapex_prune_expired_oauth_states": (AGENT, "no argument; its policy admits expired rows only"),
    "hapex_prune_run_records": (AGENT, "refuses an age under 30 days and a batch over 5000 (tests below)"),
    "hapex_unfinished_runs": (AGENT, "ids only, of runs with no live job whatever the age"),
    "hapex_due_schedules": (AGENT, "never past the database's clock, at most 1000 (test below)"),
    "hapex_vault_count_encryptions": (AGENT, "adds 1 to 1000 a call, never lowers (test below)"),
    "hapex_vault_key_census": (AGENT, "no argument; key ids and counts"),
    "hapex_vault_rotation_batch": (AGENT, "ids only, LIMIT clamped to 1..1000"),
    "hapex_vault_output_key_census": (AGENT, "no argument; key ids and counts"),
    "hapex_vault_output_rotation_batch": (AGENT, "ids only, LIMIT clamped to 1..1000"),
    "hapex_pending_notifications": (AGENT, "ids only, LIMIT clamped to 1..1000"),
    "hapex_notice_recipients": (AGENT, "only in the named client's own tenant transaction (test below)"),
    "hapex_connections_due_for_check": (AGENT, "ids and times only, LIMIT clamped to 1..1000"),
    "hapex_admin_overview": (AGENT, "no argument; counts only"),
    "hapex_admin_client_report": (AGENT, "counts and amounts per client over a range, no content"),
    "hapex_admin_reauth_connections": (AGENT, "no argument; ids, providers and error classes"),
    "hapex_admin_failing_automations": (AGENT, "counts and error classes over a range, no names"),
    "hapex_notice_connection_needs_reauth": (NOBODY, "a trigger: NEW row only"),
    "hapex_notice_automation_paused": (NOBODY, "a trigger: NEW row only"),
    "hapex_forget_step_outputs": (NOBODY, "a trigger, refused outside the row's own tenant transaction"),
    # Migration 0020 (account emails); hapex_start_session gained a device-label overload, capped as above.
    "hapex_find_account_link": (INTAKE, "an exact token hash; ids and whether the link is live, nothing else"),
    "hapex_pending_account_emails": (AGENT, "ids only, LIMIT clamped to 0..1000"),
    "hapex_account_email_recipient": (AGENT, "one address, only in the named client's own tenant transaction"),
    "hapex_defer_account_email": (NOBODY, "a trigger: NEW row's ids only"),
    # Migration 0021 (key rotation covers TOTP secrets).
    "hapex_vault_totp_key_census": (AGENT, "no argument; key ids and counts"),
    "hapex_vault_totp_rotation_batch": (AGENT, "ids only, LIMIT clamped to 1..1000"),
    # Migration 0022 (passkeys): a sign-in challenge before anyone is named.
    "hapex_issue_passkey_sign_in_challenge": (AGENT, "one hash, always five minutes from now (test below)"),
    "hapex_spend_passkey_sign_in_challenge": (AGENT, "an exact hash; true once while live (test below)"),
    # Migration 0023 (poll triggers).
    "hapex_due_polls": (AGENT, "ids and times only, never past the database's clock, at most 1000 (test below)"),

    # Migration 0025 (sign-in in the agent): tests/integration/test_sign_in_proof.py tries each as an attacker.
    "hapex_find_account": (INTAKE, "an exact email; ids only, never a hash"),
    "hapex_sign_up": (INTAKE, "a new client and its owner only: a taken client id fails, argon2id hashes only"),
    "hapex_invite_member": (INTAKE, "only into the client of an owner's live session, with no usable password"),
    "hapex_set_password_by_link": (INTAKE, "only with a live reset or invitation link's own token (not its hash)"),
    "hapex_change_email_by_link": (INTAKE, "only with a live address-change link's own token; tells the old address"),
    # Migration 0026 (the monthly rollup of cost events): tests/integration/test_monthly_costs.py.
    "hapex_roll_up_cost_events": (NOBODY, "a trigger: adds the inserted cost events' own sums, nothing else, and "
                                          "the budget notice of their clients (0011's, from the sums)"),
}


def definer_functions(owner_conn: psycopg.Connection) -> dict[str, int]:
    rows = owner_conn.execute(
        "SELECT p.proname, p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    ).fetchall()
    return {name: oid for name, oid in rows}


def test_every_definer_function_is_reviewed_here(owner_conn):
    assert set(definer_functions(owner_conn)) == set(REVIEWED)


@pytest.mark.parametrize("name", sorted(REVIEWED))
def test_each_definer_function_is_callable_only_by_the_role_that_needs_it(owner_conn, name):
    oid = definer_functions(owner_conn)[name]
    callers, _ = REVIEWED[name]
    for role in ("hapex_intake", "hapex_agent"):
        allowed = owner_conn.execute("SELECT has_function_privilege(%s, %s::oid, 'EXECUTE')", [role, oid]).fetchone()
        assert allowed == (role in callers,), (name, role)
    public = owner_conn.execute(
        "SELECT count(*) FROM pg_proc p, aclexplode(p.proacl) a WHERE p.oid = %s AND a.grantee = 0", [oid]
    ).fetchone()
    assert public == (0,), name
    # Pinned search_path: a caller's schema cannot shadow what the function refers to.
    config = owner_conn.execute("SELECT proconfig FROM pg_proc WHERE oid = %s", [oid]).fetchone()[0]
    assert config and any(c.startswith("search_path=pg_catalog") for c in config), name


def _finished_run(owner_conn, client_id, *, age: str) -> None:
    automation = owner_conn.execute(
        "INSERT INTO automations (client_id, name, status, steps) VALUES (%s, 'old', 'enabled', '[]') "
        "RETURNING automation_id", [client_id]).fetchone()[0]
    owner_conn.execute(
        "INSERT INTO runs (client_id, automation_id, automation_version, trigger_kind, status, queued_at) "
        f"VALUES (%s, %s, 1, 'manual', 'succeeded', now() - interval '{age}')", [client_id, automation])


@pytest.mark.parametrize("age", ["0 seconds", "-1 day", "29 days"])
def test_pruning_run_records_younger_than_the_minimum_retention_is_refused(agent_db, intake_db, owner_conn, age):
    client_id = make_client(intake_db)
    _finished_run(owner_conn, client_id, age="1 hour")
    with pytest.raises(psycopg.errors.InvalidParameterValue), agent_db.transaction() as conn:
        conn.execute("SELECT hapex_prune_run_records(%s::interval, 1000)", [age])
    assert owner_conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)


def test_pruning_at_the_minimum_retention_deletes_only_older_runs(agent_db, intake_db, owner_conn):
    client_id = make_client(intake_db)
    _finished_run(owner_conn, client_id, age="1 hour")
    _finished_run(owner_conn, client_id, age="31 days")
    with agent_db.transaction() as conn:
        assert conn.execute("SELECT hapex_prune_run_records(interval '30 days', 1000)").fetchone() == (1,)
    assert owner_conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)


@pytest.mark.parametrize("batch", [None, 0, -1, 5001, 2**31 - 1])
def test_a_prune_batch_outside_1_to_5000_is_refused(agent_db, intake_db, owner_conn, batch):
    client_id = make_client(intake_db)
    _finished_run(owner_conn, client_id, age="31 days")
    with pytest.raises(psycopg.errors.InvalidParameterValue), agent_db.transaction() as conn:
        conn.execute("SELECT hapex_prune_run_records(interval '30 days', %s::integer)", [batch])
    assert owner_conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)


def test_a_prune_batch_deletes_at_most_its_size_of_runs_and_of_cost_events(agent_db, intake_db, owner_conn):
    client_id = make_client(intake_db)
    for _ in range(3):
        _finished_run(owner_conn, client_id, age="40 days")
    owner_conn.execute("INSERT INTO cost_events (client_id, source, provider, occurred_at) "
                       "SELECT %s, 'provider_call', 'slack', now() - interval '40 days' FROM generate_series(1, 3)",
                       [client_id])
    with agent_db.transaction() as conn:
        assert conn.execute("SELECT hapex_prune_run_records(interval '30 days', 2)").fetchone() == (4,)
    assert owner_conn.execute("SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM cost_events)"
                              ).fetchone() == (1, 1)
    with agent_db.transaction() as conn:
        assert conn.execute("SELECT hapex_prune_run_records(interval '30 days', 2)").fetchone() == (2,)
        assert conn.execute("SELECT hapex_prune_run_records(interval '30 days', 2)").fetchone() == (0,)


def test_the_prune_job_deletes_every_old_record_a_batch_per_transaction(database, agent_db, intake_db, owner_conn,
                                                                          monkeypatch):
    from agent_service import jobs
    from tests.run_fixtures import runtime_for

    client_id = make_client(intake_db)
    for _ in range(5):
        _finished_run(owner_conn, client_id, age="500 days")
    _finished_run(owner_conn, client_id, age="1 day")
    jobs.build_queue(database.agent_dsn, runtime_for(agent_db))
    monkeypatch.setattr(jobs, "PRUNE_BATCH", 2)
    calls = []
    transaction = agent_db.transaction

    def counted_transaction():  # type: ignore[no-untyped-def]
        calls.append(1)
        return transaction()

    monkeypatch.setattr(agent_db, "transaction", counted_transaction)

    assert jobs.prune_run_records.func(timestamp=0) == 5
    assert len(calls) == 4  # 2 + 2 + 1, and one that found nothing
    assert owner_conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)


def test_a_prune_batch_held_up_past_its_time_is_undone_and_tried_again_smaller(database, agent_db, intake_db,
                                                                               owner_conn, monkeypatch):
    from agent_service import jobs

    client_id = make_client(intake_db)
    for _ in range(4):
        _finished_run(owner_conn, client_id, age="500 days")
    monkeypatch.setattr(jobs, "PRUNE_BATCH", 4)
    batches: list[jobs.PruneBatch] = []
    results: list[int] = []
    blocker = psycopg.connect(database.owner_dsn)
    try:
        blocker.execute("SELECT 1 FROM runs FOR UPDATE")  # an old run held (no one else ever is)
        pruner = threading.Thread(target=lambda: results.append(jobs.prune_old_records(agent_db, 400,
                                                                                      on_batch=batches.append)))
        pruner.start()
        deadline = time.monotonic() + 30
        while len(batches) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        # Cancelled at its time, twice, halving each time; a batch of one then waits, with no timeout.
        assert [(b.size, b.deleted, b.cancelled) for b in batches] == [(4, 0, True), (2, 0, True)]
        assert all(b.milliseconds >= jobs.PRUNE_BATCH_TIMEOUT_MS for b in batches)
        time.sleep(3 * jobs.PRUNE_BATCH_TIMEOUT_MS / 1000)
        assert len(batches) == 2
    finally:
        blocker.commit()
        blocker.close()
    pruner.join(30)
    assert results == [4]
    assert not [b for b in batches[2:] if b.cancelled]
    assert owner_conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_an_encryption_count_cannot_be_pushed_by_a_huge_increment(agent_db, owner_conn):
    key_id = "k1:" + uuid.uuid4().hex[:16]
    for count in (1001, 2**31 - 1):
        with pytest.raises(psycopg.errors.InvalidParameterValue), agent_db.transaction() as conn:
            conn.execute("SELECT hapex_vault_count_encryptions(%s, %s)", [key_id, count])
    with agent_db.transaction() as conn:
        assert conn.execute("SELECT hapex_vault_count_encryptions(%s, 1000)", [key_id]).fetchone() == (1000,)
        assert conn.execute("SELECT hapex_vault_count_encryptions(%s, -5)", [key_id]).fetchone() == (1001,)
    assert owner_conn.execute("SELECT encryptions FROM vault_key_usage WHERE key_id = %s",
                              [key_id]).fetchone() == (1001,)


def test_due_schedules_never_include_ones_due_after_the_databases_clock(agent_db, intake_db, owner_conn):
    client_id = make_client(intake_db)
    owner_conn.execute(
        "INSERT INTO automations (client_id, name, status, steps, trigger, next_run_at) VALUES "
        "(%s, 'tomorrow', 'enabled', '[]', %s, now() + interval '1 day'), "
        "(%s, 'past', 'enabled', '[]', %s, now() - interval '1 minute')",
        [client_id, Jsonb({"kind": "schedule"}), client_id, Jsonb({"kind": "schedule"})])
    with agent_db.transaction() as conn:
        due = conn.execute("SELECT count(*) FROM hapex_due_schedules(now() + interval '7 days', 2147483647)"
                           ).fetchone()
    assert due == (1,)


def test_due_polls_never_include_ones_due_after_the_databases_clock_nor_more_than_a_thousand(agent_db, intake_db,
                                                                                             owner_conn):
    client_id = make_client(intake_db)
    poll = Jsonb({"kind": "poll", "source": "gmail.new_email"})
    owner_conn.execute(
        "INSERT INTO automations (client_id, name, status, steps, trigger, next_run_at) VALUES "
        "(%s, 'tomorrow', 'enabled', '[]', %s, now() + interval '1 day'), "
        "(%s, 'schedule', 'enabled', '[]', %s, now() - interval '1 minute'), "
        "(%s, 'disabled', 'disabled', '[]', %s, now() - interval '1 minute')",
        [client_id, poll, client_id, Jsonb({"kind": "schedule"}), client_id, poll])
    owner_conn.execute(
        "INSERT INTO automations (client_id, name, status, steps, trigger, next_run_at) "
        "SELECT %s, 'past ' || n, 'enabled', '[]', %s, now() - interval '1 minute' FROM generate_series(1, 1001) n",
        [client_id, poll])
    with agent_db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM hapex_due_polls(now() + interval '7 days', 2147483647)"
                            ).fetchone() == (1000,)
        assert conn.execute("SELECT count(*) FROM hapex_due_polls(now(), -3)").fetchone() == (1,)


def test_notice_recipients_of_another_client_are_not_listed(agent_db, intake_db, owner_conn):
    mine, theirs = make_client(intake_db), make_client(intake_db)
    owner_conn.execute("INSERT INTO users (client_id, email, password_hash) VALUES (%s, 'canary@theirs.test', 'x')",
                       [theirs])
    with tenant_transaction(agent_db, mine) as conn:
        assert conn.execute("SELECT count(*) FROM hapex_notice_recipients(%s)", [theirs]).fetchone() == (0,)


@pytest.mark.parametrize(("asked", "listed"), [(2**31 - 1, 1000), (0, 1), (-7, 1)])
def test_pending_notifications_are_listed_at_most_a_thousand_at_a_time(agent_db, intake_db, owner_conn, asked,
                                                                        listed):
    client_id = make_client(intake_db)
    owner_conn.execute(
        "INSERT INTO notifications (client_id, kind, event_key, budget_percent) "
        "SELECT %s, 'budget_nearly_used', 'k' || n, 80 FROM generate_series(1, 1001) AS n", [client_id])
    with agent_db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM hapex_pending_notifications(%s)", [asked]).fetchone() == (listed,)


def test_a_sign_in_challenge_lives_five_minutes_whatever_is_asked_and_is_spent_once(agent_db, owner_conn):
    live, expired = bytes(range(32)), bytes(32)
    with agent_db.transaction() as conn:
        conn.execute("SELECT hapex_issue_passkey_sign_in_challenge(%s)", [live])
        conn.execute("SELECT hapex_issue_passkey_sign_in_challenge(%s)", [expired])
    lives = owner_conn.execute("SELECT max(expires_at - now()) <= interval '5 minutes' FROM passkey_sign_in_challenges"
                               ).fetchone()
    assert lives == (True,)
    owner_conn.execute("UPDATE passkey_sign_in_challenges SET expires_at = now() - interval '1 second' "
                       "WHERE challenge_hash = %s", [expired])
    with agent_db.transaction() as conn:
        spend = "SELECT hapex_spend_passkey_sign_in_challenge(%s)"
        assert conn.execute(spend, [expired]).fetchone() == (False,)
        assert conn.execute(spend, [live[:16]]).fetchone() == (False,)  # a prefix is not the hash: exact only
        assert conn.execute(spend, [live]).fetchone() == (True,)
        assert conn.execute(spend, [live]).fetchone() == (False,)
    # Issuing sweeps what has expired; a hash of the wrong length is refused outright.
    with agent_db.transaction() as conn:
        conn.execute("SELECT hapex_issue_passkey_sign_in_challenge(%s)", [bytes([7]) * 32])
    assert owner_conn.execute("SELECT count(*) FROM passkey_sign_in_challenges").fetchone() == (1,)
    with agent_db.transaction() as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("SELECT hapex_issue_passkey_sign_in_challenge(%s)", [b"short"])

def test_a_session_older_than_30_days_cannot_set_a_webhook_secret_even_with_its_expiry_pushed_out(
        intake_db, owner_conn):
    client_id = make_client(intake_db)
    automation_id = make_automation(intake_db, client_id)
    secret = make_session(intake_db, client_id)
    known = hashlib.sha256(b"a webhook secret").digest()
    owner_conn.execute("UPDATE sessions SET created_at = now() - interval '31 days', "
                       "expires_at = now() + interval '1 day' WHERE session_hash = %s",
                       [hashlib.sha256(secret.encode()).digest()])
    with tenant_transaction(intake_db, client_id) as conn:
        stored = conn.execute("SELECT hapex_set_webhook_secret(%s, %s, %s)", [secret, automation_id, known]).fetchone()
    assert stored == (False,)
    assert owner_conn.execute("SELECT webhook_secret_hash FROM automations WHERE automation_id = %s",
                              [automation_id]).fetchone() == (None,)
    owner_conn.execute("UPDATE sessions SET created_at = now() - interval '29 days' WHERE session_hash = %s",
                       [hashlib.sha256(secret.encode()).digest()])
    with tenant_transaction(intake_db, client_id) as conn:
        stored = conn.execute("SELECT hapex_set_webhook_secret(%s, %s, %s)", [secret, automation_id, known]).fetchone()
    assert stored == (True,)
