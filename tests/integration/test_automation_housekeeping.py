"""Duplicate, archive and delete an automation; deleting keeps or deletes its run records, never what they cost."""

from __future__ import annotations

import pytest

from tests.integration.test_automations_pages import save_digest, text_of


def run_with_cost(owner_conn, automation_id) -> None:
    """A finished run of the automation and its cost event, as the engine would have left them."""
    client_id = owner_conn.execute("SELECT client_id FROM automations WHERE automation_id = %s",
                                   [automation_id]).fetchone()[0]
    run_id = owner_conn.execute(
        "INSERT INTO runs (client_id, automation_id, automation_version, trigger_kind, status, finished_at) "
        "VALUES (%s, %s, 1, 'manual', 'succeeded', now()) RETURNING run_id", [client_id, automation_id]).fetchone()[0]
    owner_conn.execute("INSERT INTO cost_events (client_id, run_id, step_index, source, provider, model, "
                       "input_tokens, output_tokens, price_version, amount_microusd) "
                       "VALUES (%s, %s, 1, 'llm', 'anthropic', 'claude-sonnet-4-5', 10, 5, 'p1', 4200)",
                       [client_id, run_id])


def test_duplicating_makes_a_draft_copy_without_runs(signed_up, owner_conn):
    visitor, _ = signed_up
    automation_id = save_digest(visitor, owner_conn)
    page = f"/automations/{automation_id}"
    response = visitor.post(f"{page}/duplicate", token_from=page)
    assert response.status_code == 303
    copy_id = response.headers["Location"].rsplit("/", 1)[1]
    rows = owner_conn.execute("SELECT name, status, steps FROM automations ORDER BY created_at").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("Morning digest", "draft"), ("Copy of Morning digest", "draft")]
    assert rows[0][2] == rows[1][2]
    assert "This is a copy of Morning digest" in text_of(visitor.get(f"/automations/{copy_id}"))


def test_an_archived_automation_cannot_run_until_restored(signed_up, owner_conn):
    visitor, _ = signed_up
    automation_id = save_digest(visitor, owner_conn)
    page = f"/automations/{automation_id}"
    assert visitor.post(f"{page}/archive", token_from=page).status_code == 303
    assert owner_conn.execute("SELECT status FROM automations").fetchone() == ("archived",)
    refused = visitor.post(f"{page}/run", token_from=page)
    assert refused.status_code == 409
    assert owner_conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    assert ">Restore</button>" in visitor.get(page).get_data(as_text=True)
    assert visitor.post(f"{page}/restore", token_from=page).status_code == 303
    assert owner_conn.execute("SELECT status FROM automations").fetchone() == ("disabled",)


@pytest.mark.parametrize(("records", "runs_left"), [("keep", 1), ("delete", 0)])
def test_deleting_keeps_or_deletes_the_run_records_as_chosen_and_never_what_they_cost(
        signed_up, owner_conn, records, runs_left):
    visitor, _ = signed_up
    automation_id = save_digest(visitor, owner_conn)
    run_with_cost(owner_conn, automation_id)
    page = f"/automations/{automation_id}"
    assert visitor.post(f"{page}/delete", token_from=page).status_code == 400  # no choice made: nothing done
    response = visitor.post(f"{page}/delete", {"records": records}, token_from=page)
    assert response.status_code == 303
    assert visitor.get(page).status_code == 404
    assert "Morning digest</a>" not in visitor.get("/automations").get_data(as_text=True)
    assert owner_conn.execute("SELECT count(*) FROM runs").fetchone() == (runs_left,)
    assert owner_conn.execute("SELECT sum(amount_microusd) FROM cost_events").fetchone() == (4200,)
    assert ("Morning digest" in text_of(visitor.get("/runs"))) is (records == "keep")


def budget_of(owner_conn):
    return owner_conn.execute("SELECT monthly_budget_microusd FROM clients").fetchone()[0]


def test_the_client_sets_changes_and_removes_the_monthly_budget_on_the_costs_page(signed_up, owner_conn):
    visitor, _ = signed_up
    assert 'name="budget_action" value="set">Set budget</button>' in visitor.get("/costs").get_data(as_text=True)
    assert visitor.post("/costs/budget", {"budget": "$1,250.5", "budget_action": "set"}, token_from="/costs"
                        ).status_code == 303
    assert budget_of(owner_conn) == 1_250_500_000
    page = text_of(visitor.get("/costs"))
    assert "The monthly budget is saved." in page and "$1,250.50" in page
    assert visitor.post("/costs/budget", {"budget": "40", "budget_action": "set"},
                        token_from="/costs").status_code == 303
    assert budget_of(owner_conn) == 40_000_000
    assert visitor.post("/costs/budget", {"budget": "", "budget_action": "remove"},
                        token_from="/costs").status_code == 303
    assert budget_of(owner_conn) is None


@pytest.mark.parametrize(("typed", "said"), [("fifty", "like 50 or 49.99"), ("0", "more than 0"),
                                             ("12.345", "like 50 or 49.99"), ("-5", "like 50 or 49.99")])
def test_a_budget_that_is_not_an_amount_is_refused_saying_how_to_write_it(signed_up, owner_conn, typed, said):
    visitor, _ = signed_up
    response = visitor.post("/costs/budget", {"budget": typed, "budget_action": "set"}, token_from="/costs")
    assert response.status_code == 400
    assert said in text_of(response)
    assert budget_of(owner_conn) is None


def test_a_forged_budget_change_is_refused(signed_up, owner_conn):
    from tests.integration.conftest import BASE_URL

    visitor, _ = signed_up
    response = visitor.client.post("/costs/budget", data={"budget": "1", "budget_action": "set"},
                                   base_url=BASE_URL,
                                   headers={"Referer": BASE_URL + "/"})
    assert response.status_code == 400
    assert budget_of(owner_conn) is None


def test_run_times_are_shown_in_the_automations_time_zone(signed_up, owner_conn):
    visitor, _ = signed_up
    automation_id = save_digest(visitor, owner_conn, trigger_kind="schedule", cron="0 8 * * 1-5",
                                timezone="Europe/Paris")
    client_id = owner_conn.execute("SELECT client_id FROM automations").fetchone()[0]
    run_id = owner_conn.execute(
        "INSERT INTO runs (client_id, automation_id, automation_version, trigger_kind, status, queued_at, "
        "scheduled_for) VALUES (%s, %s, 1, 'schedule', 'queued', '2026-07-06 06:00:00+00', "
        "'2026-07-06 06:00:00+00') RETURNING run_id", [client_id, automation_id]).fetchone()[0]
    page = text_of(visitor.get(f"/runs/{run_id}"))
    assert "2026-07-06 08:00 CEST (Europe/Paris)" in page
    assert "2026-07-06 08:00 CEST (Europe/Paris)" in text_of(visitor.get("/runs"))


def test_an_automation_deleted_keeping_its_records_goes_once_retention_has_pruned_its_runs(
        signed_up, owner_conn, agent_db):
    visitor, _ = signed_up
    kept = save_digest(visitor, owner_conn)
    run_with_cost(owner_conn, kept)
    page = f"/automations/{kept}"
    assert visitor.post(f"{page}/delete", {"records": "keep"}, token_from=page).status_code == 303
    prune = "SELECT hapex_prune_run_records(interval '30 days', 1000)"
    with agent_db.transaction() as conn:
        conn.execute(prune)
    assert owner_conn.execute("SELECT status FROM automations").fetchall() == [("deleted",)]  # its run is recent

    owner_conn.execute("UPDATE runs SET queued_at = now() - interval '31 days'")
    owner_conn.execute("UPDATE automations SET updated_at = now() - interval '31 days'")
    with agent_db.transaction() as conn:
        assert conn.execute(prune).fetchone() == (2,)  # its run, then the automation itself

    assert owner_conn.execute("SELECT count(*) FROM automations").fetchone() == (0,)
    assert owner_conn.execute("SELECT count(*) FROM automation_versions").fetchone() == (0,)
    assert owner_conn.execute("SELECT sum(amount_microusd) FROM cost_events").fetchone() == (4200,)


def test_retention_never_removes_an_automation_that_is_not_deleted(signed_up, owner_conn, agent_db):
    visitor, _ = signed_up
    automation_id = save_digest(visitor, owner_conn)
    owner_conn.execute("UPDATE automations SET updated_at = now() - interval '400 days'")
    with agent_db.transaction() as conn:
        conn.execute("SELECT hapex_prune_run_records(interval '30 days', 1000)")
    assert owner_conn.execute("SELECT automation_id FROM automations").fetchall() == [(automation_id,)]
