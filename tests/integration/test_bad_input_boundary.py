"""Bad input gets a 4xx, never a 500, and nothing half-written: property-based, over every route.

The routes come from each app's url_map, so a new form or JSON route is covered the day it is
added. Each generated request carries at least one thing no column can store or no view expects
(a NUL character, an unpaired surrogate, a file part where text is expected, a query integer
beyond 2^31, JSON nested far too deep) among ordinary fields; the answer must be a 4xx and every
table (as the owner sees it, RLS aside) must be exactly as before. Example counts are kept small:
the property is the door's, and the door is one function.
"""

from __future__ import annotations

import inspect
import io
import json
import uuid
from typing import Any

import pytest
from flask_wtf import FlaskForm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import intake.accounts.forms
import intake.chat.forms
import intake.connections.forms
from shared.request_input import MAX_JSON_DEPTH
from tests.agent_api import ADMIN, acting_for, bearer
from tests.factories import client_of, make_automation, make_connection
from tests.integration.conftest import BASE_URL, PASSWORD, Visitor, new_email

EXAMPLES = 6  # per route; a couple of hundred requests in all
# Tables whose rows a request may touch without writing input: a session's last-seen time.
VOLATILE = {"sessions", "procrastinate_workers", "procrastinate_events"}

SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def snapshot(owner_conn) -> dict[str, str]:
    """Every table's rows, hashed: a refused request must leave each one as it was."""
    tables = [row[0] for row in owner_conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").fetchall()]
    state = {}
    for table in tables:
        summary = "count(*)::text" if table in VOLATILE else "md5(string_agg(t::text, '|' ORDER BY t::text))"
        state[table] = owner_conn.execute(f'SELECT {summary} FROM public."{table}" t').fetchone()[0]
    return state


def form_field_names() -> list[str]:
    names = {"name", "trigger_kind", "cron", "timezone", "store_outputs", "action", "new_capability",
             "steps-0-capability", "steps-0-value-query", "steps-0-value-max_results", "steps-0-ref-query",
             "revision", "provider", "label"}
    for module in (intake.accounts.forms, intake.chat.forms, intake.connections.forms):
        for _, form in inspect.getmembers(module, inspect.isclass):
            if issubclass(form, FlaskForm) and form is not FlaskForm:
                names.update(name for name, _ in form._unbound_fields or [])
                names.update(name for name, value in vars(form).items() if hasattr(value, "field_class"))
    names.discard("csrf_token")
    return sorted(names)


FIELD_NAMES = form_field_names()
ordinary_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
ordinary_fields = st.dictionaries(st.sampled_from(FIELD_NAMES), ordinary_text, max_size=6)


def with_nul(text: str, at: int) -> str:
    at = min(at, len(text))
    return text[:at] + "\x00" + text[at:]


@st.composite
def poisoned_form(draw) -> tuple[dict[str, Any], str]:
    """(form data, query string) with at least one poison among ordinary fields."""
    data: dict[str, Any] = dict(draw(ordinary_fields))
    kind = draw(st.sampled_from(["nul_value", "nul_name", "file_part", "query_integer", "query_nul"]))
    name = draw(st.sampled_from(FIELD_NAMES))
    query = ""
    if kind == "nul_value":
        data[name] = with_nul(draw(ordinary_text), draw(st.integers(0, 40)))
    elif kind == "nul_name":
        data[with_nul(name, draw(st.integers(0, len(name))))] = draw(ordinary_text)
    elif kind == "file_part":
        data[name] = draw(st.binary(max_size=64))  # sent as a file part (a fresh stream per request)
    elif kind == "query_integer":
        value = draw(st.one_of(st.integers(2**31, 2**70), st.integers(-(2**70), -(2**31) - 1)))
        query = f"?{draw(st.sampled_from(['page', 'limit', 'revision', 'index']))}={value}"
    else:
        query = "?q=" + with_nul("abc", 1).replace("\x00", "%00")
    return data, query


def intake_post_routes(app) -> list[tuple[str, str]]:
    """(endpoint, rule) of every intake route that takes a POSTed form (not the webhook, which ignores its body)."""
    return sorted((rule.endpoint, rule.rule) for rule in app.url_map.iter_rules()
                  if "POST" in rule.methods and rule.endpoint != "static"
                  and not getattr(app.view_functions[rule.endpoint], "hapex_body_ignored", False))


def fill(rule: str, ids: dict[str, str]) -> str:
    path = rule
    for converter in ("uuid:", "path:", ""):
        for name, value in ids.items():
            path = path.replace(f"<{converter}{name}>", value)
    assert "<" not in path, f"no value for an argument of {rule}: add it to the test's ids"
    return path


@pytest.fixture
def signed_in(intake_app, owner_conn, intake_db, agent_db) -> tuple[Visitor, dict[str, str]]:
    visitor = Visitor(intake_app)
    email = new_email()
    assert visitor.signup(email, PASSWORD).status_code == 303
    client_id = client_of(owner_conn, email)
    draft = owner_conn.execute("INSERT INTO chat_drafts (client_id) VALUES (%s) RETURNING draft_id",
                               [client_id]).fetchone()[0]
    ids = {
        "automation_id": str(make_automation(intake_db, client_id)),
        "connection_id": str(make_connection(agent_db, client_id, provider="google")),
        "draft_id": str(draft),
        "passkey_id": str(uuid.uuid4()),
        "run_id": str(uuid.uuid4()),
        "provider_key": "google",
        "secret": "S" * 43,
        "token": "T" * 43,
        "user_id": str(uuid.uuid4()),
    }
    return visitor, ids


def test_every_intake_form_refuses_unstorable_input_whole(intake_app, signed_in, owner_conn):
    visitor, ids = signed_in
    anonymous = Visitor(intake_app, address="203.0.113.8")
    tokens = {id(visitor): visitor.csrf_token("/account"), id(anonymous): anonymous.csrf_token("/signup")}
    routes = intake_post_routes(intake_app)
    assert len(routes) >= 10, routes
    statuses: dict[str, set[int]] = {}

    for endpoint, rule in routes:
        path = fill(rule, ids)
        callers = [visitor, anonymous] if endpoint in ("accounts.signup", "accounts.login") else [visitor]

        @SETTINGS
        @given(request=poisoned_form())
        def refused_whole(request: tuple[dict[str, Any], str]) -> None:
            data, query = request
            for caller in callers:
                before = snapshot(owner_conn)
                form = {key: (io.BytesIO(value), "notes.txt") if isinstance(value, bytes) else value
                        for key, value in data.items()}
                form["csrf_token"] = tokens[id(caller)]
                answer = caller.client.post(path + query, data=form, base_url=BASE_URL,
                                            headers={"Referer": BASE_URL + path},
                                            environ_base={"REMOTE_ADDR": caller.address})
                statuses.setdefault(endpoint, set()).add(answer.status_code)
                assert 400 <= answer.status_code < 500, (endpoint, answer.status_code, data, query)
                assert "Something went wrong" not in answer.get_data(as_text=True)
                assert snapshot(owner_conn) == before, f"{endpoint} wrote part of a refused request"

        refused_whole()
    print(f"intake: {len(routes)} form routes, statuses {statuses}")


def test_every_intake_form_answers_ordinary_but_odd_input_without_a_5xx(intake_app, signed_in):
    """Fields with any storable text, numbers as text beyond 2^31 included: a form message or a refusal."""
    visitor, ids = signed_in
    token = visitor.csrf_token("/account")
    odd_text = st.one_of(ordinary_text, st.integers(-(2**80), 2**80).map(str), st.sampled_from(
        ["", " ", "remove:99999999999", "remove:0", "add_step", "save", "steps.0.x", "webhook.post", "google",
         "[" * 40 + "]" * 40, '{"a": 1}', "*/5 * * * *", "Europe/Paris", "on"]))
    fields_strategy = st.dictionaries(st.sampled_from(FIELD_NAMES), odd_text, max_size=8)
    for endpoint, rule in intake_post_routes(intake_app):
        if endpoint in ("accounts.logout", "accounts.delete_account"):
            continue  # would end the session the other routes need
        path = fill(rule, ids)

        @SETTINGS
        @given(data=fields_strategy)
        def no_server_error(data: dict[str, str]) -> None:
            answer = visitor.client.post(path, data={**data, "csrf_token": token}, base_url=BASE_URL,
                                         headers={"Referer": BASE_URL + path},
                                         environ_base={"REMOTE_ADDR": visitor.address})
            assert answer.status_code < 500 or answer.status_code == 503, (endpoint, answer.status_code, data)
            assert "Something went wrong" not in answer.get_data(as_text=True)

        no_server_error()


def test_a_forms_json_field_nested_too_deep_gets_the_forms_message(signed_in):
    visitor, _ = signed_in
    deep = "[" * 2000 + "]" * 2000
    page = visitor.post("/automations/new", {"name": "Deep", "trigger_kind": "manual", "action": "save",
                                             "steps-0-capability": "webhook.post", "steps-0-value-payload": deep},
                        token_from="/automations/new")
    assert page.status_code < 500
    assert "Something went wrong" not in page.get_data(as_text=True)


# --- the agent's JSON routes ---------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), ordinary_text)
ordinary_json = st.dictionaries(st.text(max_size=12).filter(lambda k: "\x00" not in k),
                                st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                                             | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                                             max_leaves=8), max_size=5)


def nested(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def poisoned_json(draw) -> bytes:
    """A JSON body (as bytes: a surrogate or depth the encoder would refuse is written by hand)."""
    body = dict(draw(ordinary_json))
    kind = draw(st.sampled_from(["nul", "nul_key", "surrogate", "deep", "very_deep"]))
    key = draw(st.sampled_from(["name", "label", "message", "code", "input", "api_key", "x"]))
    if kind == "nul":
        body[key] = nested(with_nul(draw(ordinary_text), draw(st.integers(0, 40))), draw(st.integers(0, 5)))
    elif kind == "nul_key":
        body[with_nul(key, 1)] = draw(ordinary_text)
    elif kind == "deep":
        body[key] = nested({}, draw(st.integers(MAX_JSON_DEPTH + 1, 200)))
        return json.dumps(body).encode()
    elif kind == "very_deep":
        depth = draw(st.integers(1500, 5000))
        return with_member(body, key, "[" * depth + "]" * depth)
    else:
        return with_member(body, key, '"a\\ud800b"')
    return json.dumps(body).encode()


def with_member(body: dict[str, Any], key: str, raw_value: str) -> bytes:
    """The body with one more member whose value is written as given (json.dumps would refuse it)."""
    return (json.dumps(body)[:-1] + (", " if body else "") + f'"{key}": {raw_value}' + "}").encode()


def agent_routes(app) -> list[tuple[str, str, str]]:
    """(method, rule, endpoint) of every agent route that takes a JSON body or a query string."""
    return sorted((method, rule.rule, rule.endpoint) for rule in app.url_map.iter_rules()
                  if rule.endpoint != "static" for method in rule.methods - {"HEAD", "OPTIONS"})


def test_every_agent_route_refuses_unstorable_json_and_query_integers_whole(agent_app, api, intake_db, agent_db,
                                                                           owner_conn):
    from tests.factories import make_client

    client_id = make_client(intake_db)
    ids = {"client_id": str(client_id), "automation_id": str(make_automation(intake_db, client_id)),
           "connection_id": str(make_connection(agent_db, client_id)), "run_id": str(uuid.uuid4()),
           "draft_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "passkey_id": str(uuid.uuid4())}
    routes = agent_routes(agent_app)
    statuses: dict[str, set[int]] = {}
    for method, rule, endpoint in routes:
        path = fill(rule, ids)
        headers = bearer(ADMIN) if rule.startswith("/v1/admin/") else acting_for(intake_db, client_id)

        if method == "GET":
            @SETTINGS
            @given(value=st.one_of(st.integers(2**31, 2**80), st.integers(-(2**80), -(2**31) - 1)),
                   name=st.sampled_from(["limit", "after_step", "since", "page", "x"]))
            def query_refused(value: int, name: str) -> None:
                answer = api.get(f"{path}?{name}={value}", headers=headers)
                statuses.setdefault(endpoint, set()).add(answer.status_code)
                assert 400 <= answer.status_code < 500, (endpoint, answer.status_code)

            query_refused()
            continue

        @SETTINGS
        @given(body=poisoned_json())
        def body_refused(body: bytes) -> None:
            before = snapshot(owner_conn)
            answer = api.open(path, method=method, data=body, headers={**headers, "Content-Type": "application/json"})
            statuses.setdefault(endpoint, set()).add(answer.status_code)
            assert 400 <= answer.status_code < 500, (endpoint, answer.status_code, body[:200])
            assert set(answer.json) >= {"error", "message"}
            assert snapshot(owner_conn) == before, f"{endpoint} wrote part of a refused request"

        body_refused()
    print(f"agent: {len(routes)} routes, statuses {statuses}")
