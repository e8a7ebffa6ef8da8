"""The agent API's door: bearer tokens, the admin split, one error shape."""

from __future__ import annotations

import uuid

import pytest

from agent_service.config import AgentConfig
from hapex.localstack.local_secrets import new_encryption_key
from tests.agent_api import ADMIN, PREVIOUS, SERVICE, acting_for, admin_routes, bearer, client_routes
from tests.factories import make_client, make_connection


def test_healthz_is_open_and_says_nothing_private(api):
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}  # liveness only: the database is readiness's business


def test_every_client_route_without_a_token_gets_401_in_the_error_shape(api, agent_app):
    for method, path in client_routes(agent_app):
        response = api.open(path, method=method)
        assert response.status_code == 401, path
        assert set(response.json) == {"error", "message"}
        assert response.json["error"] == "unauthorized"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer " + "x" * 43,
        "Bearer " + SERVICE[:-1],
        "Basic " + SERVICE,
        "bearer",
        SERVICE,
    ],
    # Stable ids, never the random token: every pytest-xdist worker must collect the same names.
    ids=["wrong-token", "token-cut-short", "basic-scheme", "scheme-alone", "token-without-scheme"],
)
def test_a_wrong_or_malformed_token_is_refused(api, header):
    response = api.get("/v1/openapi.json", headers={"Authorization": header})
    assert response.status_code in (401, 403)
    assert "error" in response.json


def test_a_wrong_token_gets_403(api):
    assert api.get("/v1/openapi.json", headers=bearer("y" * 43)).status_code == 403


def test_the_current_and_previous_service_tokens_open_client_routes(api, agent_app, intake_db):
    client_id = make_client(intake_db)
    for token in (SERVICE, PREVIOUS):
        headers = acting_for(intake_db, client_id, token=token)
        for method, path in client_routes(agent_app, client_id):
            status = api.open(path, method=method, headers=headers).status_code
            assert status not in (401, 403), path


def test_the_service_token_never_opens_an_admin_route(api, agent_app):
    routes = admin_routes(agent_app)
    assert routes
    for token in (SERVICE, PREVIOUS):
        for method, path in routes:
            response = api.open(path, method=method, headers=bearer(token))
            assert response.status_code == 403, path
    assert api.get("/v1/admin/overview").status_code == 401


def test_the_admin_token_never_opens_a_client_route(api, agent_app):
    for method, path in client_routes(agent_app):
        assert api.open(path, method=method, headers=bearer(ADMIN)).status_code == 403, path


def test_the_admin_token_opens_admin_routes(api, intake_db):
    make_client(intake_db)
    response = api.get("/v1/admin/overview", headers=bearer(ADMIN))
    assert response.status_code == 200
    assert response.json["clients"] == 1


def test_an_admin_path_spelled_differently_is_still_an_admin_path(api):
    for path in ("/v1//admin/overview", "/v1/admin/overview/", "/v1/admin/../admin/overview"):
        response = api.get(path, headers=bearer(SERVICE))
        assert response.status_code != 200, path


def test_the_service_refuses_to_start_when_the_two_tokens_are_equal(database):
    with pytest.raises(Exception) as raised:
        AgentConfig.from_env(
            {
                "AGENT_DATABASE_URL": database.agent_dsn,
                "AGENT_SERVICE_TOKEN": SERVICE,
                "AGENT_ADMIN_TOKEN": SERVICE,
                "CREDENTIAL_ENCRYPTION_KEY": new_encryption_key(),
            }
        )
    assert "AGENT_ADMIN_TOKEN" in str(raised.value)
    assert SERVICE not in str(raised.value)


def test_a_client_sees_only_its_own_connections(api, intake_db, agent_db):
    a = make_client(intake_db)
    b = make_client(intake_db)
    a_conn = make_connection(agent_db, a, provider="google")
    b_conn = make_connection(agent_db, b, provider="slack")
    as_a = acting_for(intake_db, a)
    listed = api.get(f"/v1/clients/{a}/connections", headers=as_a).json["connections"]
    assert [c["connection_id"] for c in listed] == [str(a_conn)]
    stolen = api.get(f"/v1/clients/{a}/connections/{b_conn}", headers=as_a)
    assert stolen.status_code == 404
    assert stolen.json == {"error": "not_found", "message": "No such connection."}


def test_storing_a_key_for_a_client_the_agent_does_not_know_is_refused_for_want_of_its_proof(api, intake_db):
    someone_else = acting_for(intake_db, make_client(intake_db))
    response = api.post(f"/v1/clients/{uuid.uuid4()}/connections/api-key", headers=someone_else,
                        json={"provider": "webhook", "api_key": "whsec_" + "k" * 30})
    assert response.status_code == 403
    assert response.json["error"] == "client_proof_refused"


def test_unknown_routes_and_methods_answer_in_the_error_shape(api):
    missing = api.get("/v1/nothing-here", headers=bearer(SERVICE))
    assert missing.status_code == 404 and set(missing.json) == {"error", "message"}
    wrong_method = api.post(f"/v1/clients/{uuid.uuid4()}/connections", headers=bearer(SERVICE))
    assert wrong_method.status_code == 405 and set(wrong_method.json) == {"error", "message"}


def test_a_malformed_client_id_is_a_404_not_a_500(api):
    response = api.get("/v1/clients/not-a-uuid/connections", headers=bearer(SERVICE))
    assert response.status_code == 404


def test_a_500_never_echoes_the_exception_text(agent_app, intake_db):
    secret_text = "canary-" + uuid.uuid4().hex
    client_id = make_client(intake_db)

    @agent_app.get("/v1/clients/<uuid:client_id>/boom")
    def boom(client_id):
        raise RuntimeError(secret_text)

    response = agent_app.test_client().get(f"/v1/clients/{client_id}/boom", headers=acting_for(intake_db, client_id))
    assert response.status_code == 500
    assert response.json == {"error": "internal_error", "message": "Something went wrong on our side."}
    assert secret_text not in response.get_data(as_text=True)


def test_the_openapi_document_describes_every_route_the_app_serves(api, agent_app):
    document = api.get("/v1/openapi.json", headers=bearer(SERVICE)).json
    documented = set(document["paths"])
    served = {
        rule.rule.replace("<uuid:", "{").replace(">", "}")
        for rule in agent_app.url_map.iter_rules()
        if rule.endpoint != "static"
    }
    assert served == documented
    for path, item in document["paths"].items():
        served_methods = {
            m.lower()
            for r in agent_app.url_map.iter_rules()
            if r.rule.replace("<uuid:", "{").replace(">", "}") == path
            for m in r.methods - {"HEAD", "OPTIONS"}
        }
        assert set(item) == served_methods, path


def test_a_body_over_a_mebibyte_is_a_413_in_the_error_shape(api, intake_db):
    client_id = make_client(intake_db)
    response = api.post(f"/v1/clients/{client_id}/connections/api-key", headers=acting_for(intake_db, client_id),
                        data=b'{"provider": "webhook", "api_key": "' + b"k" * (1024 * 1024) + b'"}',
                        content_type="application/json")
    assert response.status_code == 413
    assert set(response.json) == {"error", "message"}
