"""Logs hold allowlisted fields only; token-shaped values and exception text stay out."""

from __future__ import annotations

import base64
import io
import json
import logging

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared.secret import Secret
from shared.structured_logging import JSONFormatter, clamp_noisy_loggers, configure_logging, redact


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    configure_logging("test", "DEBUG", stream=stream)
    yield stream
    logging.getLogger().handlers.clear()


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_only_allowlisted_extra_fields_are_written(log_stream):
    logging.getLogger("hapex.test").info(
        "step finished", extra={"run_id": "r1", "email_body": "Dear customer", "status": "succeeded"}
    )
    (entry,) = lines(log_stream)
    assert entry["run_id"] == "r1" and entry["status"] == "succeeded"
    assert "email_body" not in entry
    assert "Dear customer" not in log_stream.getvalue()


@pytest.mark.parametrize(
    "leak",
    [
        "Bearer ya29.a0AfH6SMBx-canary-access-token",
        "refresh_token=1//0gcanaryRefreshToken",
        "sk-ant-api03-canaryCanaryCanary",
        "xoxb-1234-5678-canarycanary",
        '{"access_token": "canary-token-value"}',
        "https://oauth2.example/token?code=4/canary-code&state=abc",
        "{'Hapex-Client-Proof': 'session canaryCanaryCanaryCanaryCanaryCanary_-x'}",
        "webhook canaryCanaryCanaryCanaryCanaryCanary_-x",
    ],
)
def test_token_shaped_values_in_messages_are_redacted(log_stream, leak):
    logging.getLogger("hapex.test").warning("provider said %s", leak)
    output = log_stream.getvalue()
    assert "canary" not in output.lower()
    assert "[redacted]" in output


# One shape per token kind of each provider in the catalog, as each provider issues it.
PROVIDER_TOKEN_SHAPES = {
    "google access token": "ya29.a0AfB_byCanaryCanaryCanary0123456789",
    "google refresh token": "1//0gCanaryRefreshTokenCanary0123",
    "google authorization code": "https://localhost/cb?x=1 4/0AanRRrtCanaryCanaryCanary0123456",
    "google client secret": "GOCSPX-CanaryCanaryCanary01234567",
    "slack bot token": "xoxb-123456789012-1234567890123-CanaryCanaryCanary",
    "slack user token": "xoxp-123456789012-1234567890123-CanaryCanaryCanary",
    "slack refresh token": "xoxe-1-My0xLTEyMzQ1Njc4OTAxMi1DanaryCanary",
    "slack rotating token": "xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4OTAxMi1DanaryCanary",
    "microsoft jwt access token": ("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2dyYXBoLm1pY3Jvc29m"
                                   "dC5jb20iLCJjYW5hcnkiOnRydWV9.Q2FuYXJ5U2lnbmF0dXJlQ2FuYXJ5"),
    "microsoft client secret": "Abc8Q~CanaryCanaryCanaryCanary0123456789",
    "microsoft refresh token": "M.C5_BAY.0.U.-CanaryCanaryCanary!*Canary$Canary",
    "notion integration token": "ntn_4527CanaryCanaryCanaryCanary0123456789",
    "notion secret token": "secret_CanaryCanaryCanaryCanary0123456789",
    # A UUID: told apart from an id only by where it stands (a body, a form, the revocation path).
    "hubspot refresh token": ('{"refresh_token": "6f18f21e-a743-4509-b7fd-1a5e632fffa1"} '
                              "grant_type=refresh_token&refresh_token=6f18f21e-a743-4509-b7fd-1a5e632fffa1"),
    "hubspot regional refresh token": "na1-6f18-a743-4509-b7fd-1a5e632fffa1",
    "hubspot revocation url": "DELETE https://api.hubapi.com/oauth/v1/refresh-tokens/6f18f21e-a743-4509-b7fd-1a5e632fffa1",
    "hubspot access token": "CJSP5qf1KhICAQEYs-gDIIGOBii1hQIyGQAf3xBKmlwHjX7OIpuIFEavB2-qYAGQsF4",
    "hubspot private app token": "pat-na1-6f18f21e-a743-4509-b7fd-1a5e632fffa1",
    "anthropic api key": "sk-ant-api03-CanaryCanaryCanary-0123456789",
    "oauth state": "https://localhost:8443/connections/oauth/google/callback?state=Zm9vCanaryState&iss=x",
    "webhook url": "POST /hooks/Q2FuYXJ5V2ViaG9va1NlY3JldA0123456789abcdef",
    "account email link": "GET /email-link/Q2FuYXJ5TGluaw-_0123456789abcdefghijklmnopq HTTP/1.1",
    "long random secret": "webhook signing key kF9sQ2pLm8XzR4vN7bT1yW6cJ3hD5gA0eU",
    # The local sandbox's tokens (token_urlsafe after a prefix: now and then without a digit) and secrets.
    "sandbox access token": "sbx-at-CanaryCanaryCanaryCanaryCanaryCanary_Can",
    "sandbox refresh token": "sbx-rt-CanaryCanaryCanary-CanaryCanaryCanaryCan",
    # The client's proof header however it is written, whatever the secret's length.
    "client proof header": "{'Hapex-Client-Proof': 'session CanaryShortSecret'}",
    "client proof header encoded": "hapex_client_proof=webhook%20CanaryShortSecret&x=1",
}
SECRET_PARTS = {
    "hubspot refresh token": "6f18f21e-a743-4509-b7fd-1a5e632fffa1",
    "hubspot regional refresh token": "6f18-a743-4509-b7fd-1a5e632fffa1",
    "hubspot revocation url": "6f18f21e-a743-4509-b7fd-1a5e632fffa1",
    "hubspot private app token": "6f18f21e-a743-4509-b7fd-1a5e632fffa1",
    "hubspot access token": "CJSP5qf1KhICAQEYs",
    "microsoft jwt access token": "eyJhdWQiOiJodHRwczovL2dyYXBo",
    "webhook url": "Q2FuYXJ5V2ViaG9va1NlY3JldA",
    "long random secret": "kF9sQ2pLm8XzR4vN7bT1yW6cJ3hD5gA0eU",
    "google authorization code": "0AanRRrt",
}


@pytest.mark.parametrize("shape", sorted(PROVIDER_TOKEN_SHAPES))
def test_every_provider_token_shape_is_redacted(log_stream, shape):
    logging.getLogger("hapex.test").warning("provider said %s", PROVIDER_TOKEN_SHAPES[shape])
    output = log_stream.getvalue()
    assert "canary" not in output.lower()
    assert SECRET_PARTS.get(shape, "Canary") not in output
    assert "[redacted]" in output


def test_every_provider_in_the_catalog_has_its_token_shapes_tested():
    from shared.catalog import PROVIDERS

    tested = {shape.split()[0] for shape in PROVIDER_TOKEN_SHAPES}
    # The webhook step's secret is Hapex's own random value (the "long random secret" shape); the
    # built-in steps (conditions) hold no token at all.
    built_in = {key for key, provider in PROVIDERS.items() if provider.built_in}
    assert set(PROVIDERS) - {"webhook"} - built_in <= tested


def test_ids_and_ordinary_words_are_kept(log_stream):
    client_id = "0b9c6a3e-5f1d-4c2b-9e8a-7d6f5e4c3b2a"
    logging.getLogger("hapex.test").info("run %s of agent_service.capabilities.google_calendar",
                                         client_id, extra={"client_id": client_id, "path": "/automations/12"})
    (entry,) = lines(log_stream)
    assert client_id in entry["message"] and entry["client_id"] == client_id
    assert "agent_service.capabilities.google_calendar" in entry["message"]
    assert entry["path"] == "/automations/12"


def test_a_secret_argument_is_masked(log_stream):
    logging.getLogger("hapex.test").info("using %s", Secret("canary-secret-value"))
    assert "canary-secret-value" not in log_stream.getvalue()


def test_an_exception_is_logged_as_its_class_and_frames_never_its_message(log_stream):
    try:
        raise ValueError("customer email body: canary-content")
    except ValueError:
        logging.getLogger("hapex.test").exception("step failed")
    (entry,) = lines(log_stream)
    assert entry["error_class"] == "ValueError"
    assert entry["stack"]
    assert "canary-content" not in log_stream.getvalue()


def test_oauth_libraries_never_log_below_info():
    for name in ("requests_oauthlib", "oauthlib"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    clamp_noisy_loggers()
    for name in ("requests_oauthlib", "oauthlib"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.INFO


@pytest.mark.parametrize("name", ["gunicorn.error", "gunicorn.access", "procrastinate", "procrastinate.worker",
                                  "psycopg", "psycopg.pool"])
def test_server_queue_and_driver_loggers_never_log_below_info_even_at_debug(name):
    logging.getLogger(name).setLevel(logging.NOTSET)
    configure_logging("test", "DEBUG", stream=io.StringIO())
    try:
        assert logging.getLogger(name).getEffectiveLevel() >= logging.INFO
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)
    finally:
        logging.getLogger().handlers.clear()


def test_the_pools_three_lines_for_every_checkout_are_not_logged_at_info():
    logging.getLogger("psycopg.pool").setLevel(logging.NOTSET)
    configure_logging("test", "INFO", stream=io.StringIO())
    try:
        assert not logging.getLogger("psycopg.pool").isEnabledFor(logging.INFO)
        assert logging.getLogger("psycopg.pool").isEnabledFor(logging.WARNING)
        assert logging.getLogger("psycopg").isEnabledFor(logging.INFO)
    finally:
        logging.getLogger().handlers.clear()


def test_gunicorns_log_configuration_clamps_its_own_loggers_at_debug():
    from shared.structured_logging import gunicorn_logconfig

    loggers = gunicorn_logconfig("intake", "debug")["loggers"]
    assert loggers["gunicorn.error"]["level"] == "INFO"
    assert loggers["gunicorn.access"]["level"] == "WARNING" and loggers["gunicorn.access"]["handlers"] == []
    assert loggers["procrastinate"]["level"] == "INFO" and loggers["psycopg"]["level"] == "INFO"
    assert loggers["psycopg.pool"]["level"] == "WARNING"
    assert gunicorn_logconfig("intake", "warning")["loggers"]["gunicorn.error"]["level"] == "WARNING"


@pytest.mark.parametrize("message", [
    "Invalid request from ip=203.0.113.9: Invalid HTTP request line: 'POST /hooks/CanarySecret HTTP/1.1x'",
    "Invalid request from ip=203.0.113.9: Invalid HTTP Header: 'Authorization: Bearer CanaryToken'",
    "Invalid request from ip=203.0.113.9: Invalid HTTP header name: 'X-Canary\\x00'",
    "Error handling request POST /connections/oauth/google/callback?code=Canary&state=Canary",
    "Invalid request from ip=::1: Invalid HTTP Version: 'HTTP/9.Canary'",
    "Invalid request from ip=203.0.113.9: [SSL: Canary] /hooks/Canary",
])
def test_gunicorns_logger_keeps_the_failure_and_drops_what_the_client_sent(message):
    from hapex.gunicorn_logging import masked

    text = masked(message)
    assert "Canary" not in text
    kept = ("Invalid request from ip=203.0.113.9: ", "Invalid request from ip=::1: Invalid HTTP Version (",
            "Error handling request")
    assert text.startswith(kept)


def test_the_operator_command_logs_as_the_services_do(monkeypatch, capsys):
    from hapex import cli

    def handler(args):
        logging.getLogger("procrastinate").debug("job args %s", "CanaryArgs")
        logging.getLogger("hapex.test").warning("refreshing with token=CanaryToken1234")
        return 0

    monkeypatch.setattr(cli, "cmd_keys_generate", handler)
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    try:
        assert cli.main(["keys", "generate"]) == 0
    finally:
        err = capsys.readouterr().err
        logging.getLogger().handlers.clear()
    assert "Canary" not in err
    (entry,) = [json.loads(line) for line in err.splitlines()]
    assert entry["logger"] == "hapex.test" and entry["service"] == "hapex"
    assert entry["message"] == "refreshing with token=[redacted]"


def test_each_line_is_one_json_object():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "multi\nline %s", ("arg",), None)
    text = JSONFormatter("svc").format(record)
    assert "\n" not in text
    assert json.loads(text)["message"] == "multi\nline arg"


def test_paths_under_a_secret_prefix_are_masked_and_others_kept():
    from shared.access_log import logged_path

    assert logged_path("/hooks/S3CRETwebhookVALUE", ("/hooks/",)) == "/hooks/<secret>"
    assert logged_path("/hooks/", ("/hooks/",)) == "/hooks/<secret>"
    assert logged_path("/automations/123", ("/hooks/",)) == "/automations/123"


# --- the generic shape: any long secret of the shapes Hapex issues, never an ordinary word ------------

_ISSUED_SECRETS = st.one_of(
    # secrets.token_urlsafe(n): sessions, webhooks, email links, the webhook step's key (32 bytes and more).
    st.binary(min_size=24, max_size=64).map(lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")),
    # secrets.token_hex(n) and pyotp.random_base32(32): TOTP secrets, sandbox secrets.
    st.binary(min_size=16, max_size=48).map(bytes.hex),
    st.binary(min_size=20, max_size=40).map(lambda raw: base64.b32encode(raw).decode().rstrip("=")),
)
_WORDS = ["automation", "scheduled", "digest", "step", "google", "service",
          "agent", "intake", "runs", "engine", "webhook", "refresh", "token", "revocation", "morning"]
# (Not words starting "C" in capitals: a HubSpot access token begins C and a capital, so that shape masks them.)
_ORDINARY = st.one_of(
    st.lists(st.sampled_from(_WORDS), min_size=3, max_size=8).map("_".join),
    st.lists(st.sampled_from(_WORDS), min_size=3, max_size=8).map(".".join),
    st.lists(st.sampled_from(_WORDS), min_size=3, max_size=8).map(lambda ws: "_".join(ws).upper()),
    st.uuids().map(str),
)


@settings(max_examples=2000, deadline=None)
@given(_ISSUED_SECRETS)
def test_every_long_secret_of_an_issued_shape_is_masked_in_free_text(secret):
    assume(len(secret) >= 32 and len(set(secret)) >= 10)  # a draw, not a run of one byte
    assert secret not in redact(f"something went wrong near {secret} today")


@pytest.mark.parametrize("secret", [
    "kFsQpLmXzRvNbTyWcJhDgAeUqPoIuYtRkLmN",  # a 43-character draw of base64 with no digit at all
    "Ab_Cd-EfGhIjKlMnOpQrStUvWxYzAbCdEfGhIjKlMnO",
    "JBSWYJDPEHPKPXQHZNUWYQLMMVSWKTPEBZXCZLCOJSXI",  # base32 (pyotp) with no digit
])
def test_a_random_secret_without_digits_is_masked(secret):
    assert secret not in redact(f"key {secret[:3]} then {secret}")


@settings(max_examples=500, deadline=None)
@given(_ORDINARY)
def test_names_identifiers_and_uuids_are_not_masked(word):
    text = f"loaded {word} at start"
    assert redact(text) == text


@pytest.mark.parametrize("name", ["ProviderUnauthorizedDuringTokenRefresh", "AutomationPausedBecauseConnectionExpired",
                                  "UntranslatableCharacterInSignupForm"])
def test_long_camel_case_names_of_words_are_not_masked(name):
    assert redact(f"error {name} seen") == f"error {name} seen"
