"""The capability catalog: narrowest scopes, read never asks for write, overrides from the env."""

from __future__ import annotations

import itertools
from urllib.parse import urlsplit

import pytest
from marshmallow import ValidationError

from shared.catalog import (
    CAPABILITIES,
    PROVIDERS,
    Access,
    AuthKind,
    get_provider,
    minimal_scopes,
    required_providers,
    required_scopes,
)

G = "https://www.googleapis.com/auth/"
READ_ONLY = [c for c in CAPABILITIES.values() if c.access is Access.READ]


def test_every_capability_names_scopes_its_provider_defines():
    for capability in CAPABILITIES.values():
        provider = PROVIDERS[capability.provider]
        for scope in capability.scopes:
            provider.scope(scope)


@pytest.mark.parametrize("capability", READ_ONLY, ids=lambda c: c.key)
def test_an_automation_that_only_reads_asks_for_no_write_scope(capability):
    for provider, scopes in required_scopes([capability.key]).items():
        for name in scopes:
            assert PROVIDERS[provider].scope(name).access is Access.READ, (capability.key, name)


def test_every_read_only_capability_is_covered():
    assert {c.key for c in READ_ONLY} >= {
        "gmail.list_recent", "gmail.search", "gmail.read", "sheets.read",
        "calendar.list_events", "drive.read_file", "outlook.search_mail",
    }


def test_a_capability_that_writes_declares_a_write_scope_or_has_none_to_declare():
    for capability in CAPABILITIES.values():
        if capability.access is Access.WRITE and capability.scopes:
            accesses = {PROVIDERS[capability.provider].scope(s).access for s in capability.scopes}
            assert Access.WRITE in accesses, capability.key


def test_a_broader_scope_replaces_the_narrower_one_it_includes():
    assert required_scopes(["gmail.list_recent", "gmail.search"]) == {"google": (G + "gmail.readonly",)}
    assert required_scopes(["sheets.read", "sheets.append"]) == {"google": (G + "spreadsheets",)}
    assert required_scopes(["sheets.read"]) == {"google": (G + "spreadsheets.readonly",)}


def test_a_granted_broader_scope_allows_the_narrower_one_and_nothing_it_does_not_imply():
    google = PROVIDERS["google"]
    assert google.granted_closure([G + "spreadsheets"]) == {G + "spreadsheets", G + "spreadsheets.readonly"}
    assert google.granted_closure([G + "spreadsheets.readonly"]) == {G + "spreadsheets.readonly"}
    assert google.granted_closure(["not-a-google-scope"]) == {"not-a-google-scope"}


def test_what_consent_asks_for_allows_every_step_that_asked_for_it():
    for pair in itertools.combinations(sorted(CAPABILITIES), 2):
        for provider, scopes in required_scopes(pair).items():
            allowed = PROVIDERS[provider].granted_closure(scopes)
            for key in pair:
                if CAPABILITIES[key].provider == provider:
                    assert set(CAPABILITIES[key].scopes) <= allowed, (pair, key)


def test_metadata_alone_is_asked_for_when_only_metadata_is_needed():
    assert required_scopes(["gmail.list_recent"]) == {"google": (G + "gmail.metadata",)}


def test_drive_asks_for_the_per_file_scope_never_the_whole_drive():
    (scope,) = required_scopes(["drive.read_file"])["google"]
    assert scope == G + "drive.file"
    assert all("drive.readonly" not in s.name and not s.name.endswith("/drive") for s in PROVIDERS["google"].scopes)


def test_no_pair_of_capabilities_yields_scopes_that_conflict():
    for a, b in itertools.combinations(CAPABILITIES, 2):
        for provider, scopes in required_scopes([a, b]).items():
            for name in scopes:
                conflicts = PROVIDERS[provider].scope(name).conflicts_with
                assert not conflicts & set(scopes), (a, b, name)


def test_the_three_step_digest_needs_exactly_these_scopes():
    steps = [{"capability": "gmail.search"}, {"capability": "llm.summarise"}, {"capability": "slack.post_message"}]
    assert required_scopes(steps) == {"google": (G + "gmail.readonly",), "slack": ("chat:write",)}
    assert required_providers(steps) == ("google", "slack")


def test_an_unknown_scope_or_capability_is_refused():
    with pytest.raises(KeyError):
        minimal_scopes("google", [G + "gmail.modify"])
    with pytest.raises(KeyError):
        required_scopes(["gmail.delete_everything"])


def test_oauth_providers_have_https_endpoints_and_hapex_key_providers_none():
    for provider in PROVIDERS.values():
        if provider.auth_kind is AuthKind.OAUTH2:
            for url in (provider.authorization_url, provider.token_url, provider.api_base_url):
                assert url and urlsplit(url).scheme == "https", provider.key
            if provider.revocation_url:
                assert urlsplit(provider.revocation_url).scheme == "https"


def test_endpoints_and_issuer_can_be_pointed_elsewhere_from_the_environment():
    from shared.config import Environment, resolve_catalog

    environ = {
        "HAPEX_GOOGLE_AUTHORIZATION_URL": "https://localhost:9000/authorize",
        "HAPEX_GOOGLE_TOKEN_URL": "https://localhost:9000/token",
        "HAPEX_GOOGLE_REVOCATION_URL": "https://localhost:9000/revoke",
        "HAPEX_GOOGLE_API_BASE_URL": "https://localhost:9000/api",
        "HAPEX_GOOGLE_ISSUER": "https://localhost:9000",
    }
    google = resolve_catalog(Environment(environ)).provider("google")
    assert google.authorization_url == "https://localhost:9000/authorize"
    assert google.token_url == "https://localhost:9000/token"
    assert google.revocation_url == "https://localhost:9000/revoke"
    assert google.api_base_url == "https://localhost:9000/api"
    assert google.issuer == "https://localhost:9000"
    assert get_provider("google").token_url == "https://oauth2.googleapis.com/token"


def test_a_provider_without_a_client_id_is_unavailable_not_broken():
    from shared.config import Environment, resolve_catalog

    assert not resolve_catalog(Environment({})).is_available("slack")
    assert resolve_catalog(Environment({"HAPEX_SLACK_CLIENT_ID": "123.456"})).is_available("slack")
    assert resolve_catalog(Environment({})).is_available("webhook")


def test_the_catalog_itself_reads_no_environment(monkeypatch):
    monkeypatch.setenv("HAPEX_GOOGLE_TOKEN_URL", "https://localhost:9000/token")
    monkeypatch.setenv("HAPEX_SLACK_CLIENT_ID", "123.456")
    assert get_provider("google").token_url == "https://oauth2.googleapis.com/token"
    from shared.catalog import UNCONFIGURED

    assert not UNCONFIGURED.is_available("slack")


def test_step_inputs_are_validated_by_their_schemas():
    schema = CAPABILITIES["slack.post_message"].input_schema()
    assert schema.load({"channel": "#support", "text": "Hello"}) == {"channel": "#support", "text": "Hello"}
    with pytest.raises(ValidationError) as raised:
        schema.load({"channel": "support room", "text": "", "extra": 1})
    assert set(raised.value.messages) == {"channel", "text", "extra"}


def test_a_webhook_must_be_https():
    schema = CAPABILITIES["webhook.post"].input_schema()
    with pytest.raises(ValidationError):
        schema.load({"url": "http://example.com/hook", "payload": {}})
    assert schema.load({"url": "https://example.com/hook", "payload": {"a": 1}})["payload"] == {"a": 1}
