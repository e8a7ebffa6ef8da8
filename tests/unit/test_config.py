"""Start-up configuration: a missing or malformed value names the variable, never its value."""

from __future__ import annotations

import dataclasses

import pytest

from agent_service.config import DEFAULT_LLM_MODEL, AgentConfig, CredentialKeysConfig, ReportsConfig
from agent_service.runs.prices import MODEL_PRICES
from agent_service.runtime import AgentRuntime
from hapex.localstack.local_secrets import new_encryption_key, new_token
from hapex.settings import GunicornSettings, LauncherSettings
from intake.config import IntakeConfig
from shared.catalog import ENDPOINT_FIELDS, PROVIDERS, AuthKind
from shared.config import ConfigError, Environment, UndeclaredVariable

DSN = "postgresql://hapex_agent@localhost/hapex"


def agent_env(**overrides: str | None) -> dict[str, str]:
    env = {
        "AGENT_DATABASE_URL": DSN,
        "AGENT_SERVICE_TOKEN": new_token(),
        "AGENT_ADMIN_TOKEN": new_token(),
        "CREDENTIAL_ENCRYPTION_KEY": new_encryption_key(),
    }
    env.update({k: v for k, v in overrides.items() if v is not None})
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
    return env


def intake_env(tmp_path, **overrides: str | None) -> dict[str, str]:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    env = {
        "INTAKE_DATABASE_URL": DSN,
        "INTAKE_SESSION_SECRET": new_token(),
        "AGENT_SERVICE_TOKEN": new_token(),
        "AGENT_SERVICE_URL": "https://agent.internal:8444",
        "AGENT_SERVICE_CA": str(ca),
    }
    env.update({k: v for k, v in overrides.items() if v is not None})
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
    return env


def test_a_complete_agent_environment_loads():
    config = AgentConfig.from_env(agent_env())
    assert config.service_token.reveal()


@pytest.mark.parametrize(
    "variable",
    ["AGENT_DATABASE_URL", "AGENT_SERVICE_TOKEN", "AGENT_ADMIN_TOKEN", "CREDENTIAL_ENCRYPTION_KEY"],
)
def test_the_agent_refuses_to_start_without_each_required_variable(variable):
    with pytest.raises(ConfigError) as raised:
        AgentConfig.from_env(agent_env(**{variable: None}))
    assert raised.value.variable == variable
    assert "must be set" in str(raised.value)


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("CREDENTIAL_ENCRYPTION_KEY", "c2hvcnQ=", "32 bytes"),
        ("CREDENTIAL_ENCRYPTION_KEY", "!!!!not-base64!!!!", "base64"),
        ("CREDENTIAL_ENCRYPTION_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "one byte"),
        ("CREDENTIAL_ENCRYPTION_KEYS_RETIRED", "c2hvcnQ=", "32 bytes"),
        ("AGENT_SERVICE_TOKEN", "too-short", "at least"),
        ("AGENT_ADMIN_TOKEN", "a" * 64, "random"),
        ("AGENT_DATABASE_URL", "mysql://nope", "postgresql"),
        ("AGENT_DB_POOL_MAX", "lots", "integer"),
        ("WORKER_CONCURRENCY", "lots", "integer"),
        ("WORKER_NICE", "-5", "between"),
        ("HAPEX_BENCH_ALLOW_LOOPBACK_WEBHOOKS", "maybe-so", "true or false"),
        ("HAPEX_STEP_MAX_ATTEMPTS", "99", "between"),
        ("HAPEX_SMTP_HOST", "smtp.example.com:587", "host name"),
    ],
)
def test_a_malformed_agent_value_is_named_but_never_printed(variable, value, problem):
    with pytest.raises(ConfigError) as raised:
        AgentConfig.from_env(agent_env(**{variable: value}))
    assert raised.value.variable == variable
    assert problem in str(raised.value)
    assert value not in str(raised.value)


def test_workers_run_behind_the_intake_by_default_and_level_with_it_at_zero():
    assert AgentConfig.from_env(agent_env()).worker_nice == 10
    assert AgentConfig.from_env(agent_env(WORKER_NICE="0")).worker_nice == 0


def test_the_admin_token_must_differ_from_the_service_token():
    token = new_token()
    with pytest.raises(ConfigError) as raised:
        AgentConfig.from_env(agent_env(AGENT_SERVICE_TOKEN=token, AGENT_ADMIN_TOKEN=token))
    assert raised.value.variable == "AGENT_ADMIN_TOKEN"
    with pytest.raises(ConfigError):
        AgentConfig.from_env(agent_env(AGENT_SERVICE_TOKEN_PREVIOUS=token, AGENT_ADMIN_TOKEN=token))


def test_config_reprs_never_show_a_secret():
    env = agent_env()
    text = repr(AgentConfig.from_env(env)) + str(AgentConfig.from_env(env))
    for name in ("AGENT_SERVICE_TOKEN", "AGENT_ADMIN_TOKEN", "CREDENTIAL_ENCRYPTION_KEY"):
        assert env[name] not in text
    assert DSN not in text


def test_the_intake_configuration_has_no_field_for_the_encryption_key(tmp_path):
    names = {f.name for f in dataclasses.fields(IntakeConfig)}
    assert not any("encryption" in n or "credential" in n for n in names)
    env = intake_env(tmp_path, CREDENTIAL_ENCRYPTION_KEY=new_encryption_key())
    config = IntakeConfig.from_env(env)
    assert env["CREDENTIAL_ENCRYPTION_KEY"] not in repr(config)


@pytest.mark.parametrize(
    "url", ["http://agent.internal:8444", "ftp://agent", "agent.internal:8444", "https://"]
)
def test_the_intake_refuses_an_agent_url_that_is_not_https(tmp_path, url):
    with pytest.raises(ConfigError) as raised:
        IntakeConfig.from_env(intake_env(tmp_path, AGENT_SERVICE_URL=url))
    assert raised.value.variable == "AGENT_SERVICE_URL"


@pytest.mark.parametrize(
    "variable", ["INTAKE_DATABASE_URL", "INTAKE_SESSION_SECRET", "AGENT_SERVICE_TOKEN", "AGENT_SERVICE_URL"]
)
def test_the_intake_refuses_to_start_without_each_required_variable(tmp_path, variable):
    with pytest.raises(ConfigError) as raised:
        IntakeConfig.from_env(intake_env(tmp_path, **{variable: None}))
    assert raised.value.variable == variable


def test_the_intake_refuses_a_ca_file_that_does_not_exist(tmp_path):
    with pytest.raises(ConfigError) as raised:
        IntakeConfig.from_env(intake_env(tmp_path, AGENT_SERVICE_CA=str(tmp_path / "missing.pem")))
    assert raised.value.variable == "AGENT_SERVICE_CA"


# --- read once, and only what is declared ----------------------------------------------------


class RecordingEnvironment(dict):
    """An environment that remembers every name asked of it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.asked: set[str] = set()

    def get(self, name, default=None):  # type: ignore[override]
        self.asked.add(name)
        return super().get(name, default)


def every_setting(tmp_path) -> dict[str, str]:
    """A valid value for every variable any config class declares, so that every branch reads."""
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    env = agent_env() | intake_env(tmp_path) | {
        "AGENT_SERVICE_TOKEN_PREVIOUS": new_token(), "CREDENTIAL_ENCRYPTION_KEYS_RETIRED": new_encryption_key(),
        "LOG_LEVEL": "INFO", "AGENT_DB_POOL_MAX": "5", "AGENT_DB_POOL_MIN": "1", "INTAKE_DB_POOL_MAX": "5",
        "INTAKE_DB_POOL_MIN": "1", "ANTHROPIC_API_KEY": "sk-ant-x", "HAPEX_LLM_MODEL": "claude-sonnet-5-5",
        "HAPEX_OUTBOUND_CA_BUNDLE": str(ca), "HAPEX_RUN_TIME_LIMIT_SECONDS": "900", "HAPEX_STEP_MAX_ATTEMPTS": "4",
        "HAPEX_RETRY_BASE_MS": "1000", "HAPEX_RUN_RETENTION_DAYS": "400", "HAPEX_SMTP_HOST": "smtp.example.com",
        "HAPEX_SMTP_PORT": "587", "HAPEX_SMTP_FROM": "Hapex <notices@example.com>", "HAPEX_SMTP_USERNAME": "hapex",
        "HAPEX_SMTP_PASSWORD": "pw", "HAPEX_SMTP_STARTTLS": "true", "HAPEX_BENCH_ALLOW_LOOPBACK_WEBHOOKS": "0",
        "WORKER_CONCURRENCY": "4", "WORKER_GRACE_SECONDS": "45", "TRUSTED_PROXY_COUNT": "1",
        "INTAKE_SECURE_COOKIES": "true",
        "INTAKE_PASSWORD_HASH_PROFILE": "test", "HAPEX_TEST_MODE": "1", "INTAKE_SESSION_IDLE_MINUTES": "30",
        "INTAKE_SESSION_ABSOLUTE_HOURS": "12", "INTAKE_PUBLIC_URL": "https://app.example.com",
        "DATABASE_URL": DSN, "HAPEX_DATA_DIR": str(tmp_path), "HAPEX_WORKERS": "1", "HAPEX_BIND_HOST": "127.0.0.1",
        "HAPEX_BIND": "127.0.0.1:8443", "INTAKE_PORT": "8443", "AGENT_PORT": "8444", "TLS_CERT_FILE": str(ca),
        "TLS_KEY_FILE": str(ca), "HAPEX_SERVICE": "intake", "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4",
    }
    for provider in PROVIDERS.values():
        for endpoint in ENDPOINT_FIELDS:
            env[f"{provider.env_prefix}_{endpoint.upper()}"] = f"https://{provider.key}.example.com/{endpoint}"
        if provider.auth_kind is AuthKind.OAUTH2:
            env[f"{provider.env_prefix}_CLIENT_ID"] = f"{provider.key}-id"
            env[f"{provider.env_prefix}_CLIENT_SECRET"] = f"{provider.key}-secret"
    return env


@pytest.mark.parametrize(
    "config_class", [AgentConfig, IntakeConfig, CredentialKeysConfig, ReportsConfig, LauncherSettings, GunicornSettings]
)
def test_each_config_class_reads_exactly_the_variables_it_declares(tmp_path, config_class):
    environ = RecordingEnvironment(every_setting(tmp_path))
    config_class.from_env(environ)
    assert environ.asked == set(config_class.variables())


def test_a_read_of_an_undeclared_variable_is_refused():
    env = Environment({"HAPEX_OTHER": "1"}, declared={"HAPEX_OWN"})
    assert env.get("HAPEX_OWN") is None
    with pytest.raises(UndeclaredVariable):
        env.get("HAPEX_OTHER")


def test_the_intake_reads_client_ids_but_never_a_client_secret(tmp_path):
    assert not [name for name in IntakeConfig.variables() if "SECRET" in name and name != "INTAKE_SESSION_SECRET"]
    env = every_setting(tmp_path)
    config = IntakeConfig.from_env(env)
    assert config.providers.client_id("google") == "google-id"
    assert config.providers.provider("google").token_url == "https://google.example.com/token_url"
    assert "google-secret" not in repr(config)
    assert not [value for value in vars(config.providers).values() if "google-secret" in repr(value)]


def test_the_agent_holds_its_oauth_clients_and_smtp_settings_from_start(tmp_path):
    config = AgentConfig.from_env(every_setting(tmp_path))
    assert config.oauth_clients["google"].client_id == "google-id"
    assert config.oauth_clients["google"].client_secret.reveal() == "google-secret"
    assert config.smtp is not None and config.smtp.host == "smtp.example.com"
    assert "google-secret" not in repr(config) and "pw" not in repr(config.smtp)


def test_the_runtime_takes_its_settings_from_the_config_not_from_the_environment(monkeypatch):
    config = AgentConfig.from_env(agent_env())
    monkeypatch.setenv("HAPEX_BENCH_ALLOW_LOOPBACK_WEBHOOKS", "1")
    monkeypatch.setenv("HAPEX_GOOGLE_TOKEN_URL", "https://elsewhere.example.com/token")
    monkeypatch.setenv("HAPEX_SMTP_HOST", "smtp.example.com")
    runtime = AgentRuntime.build(db=None, vault=None, config=config)  # type: ignore[arg-type]
    assert runtime.allow_loopback_webhooks is False
    assert runtime.provider("google").token_url == "https://oauth2.googleapis.com/token"
    assert runtime.smtp is None
    switched = AgentConfig.from_env(agent_env(HAPEX_BENCH_ALLOW_LOOPBACK_WEBHOOKS="1", HAPEX_TEST_MODE="1"))
    assert AgentRuntime.build(db=None, vault=None, config=switched).allow_loopback_webhooks  # type: ignore[arg-type]


def test_the_default_llm_model_is_current_and_priced():
    config = AgentConfig.from_env(agent_env())
    assert config.llm_model == DEFAULT_LLM_MODEL == "claude-sonnet-5-5"
    assert config.llm_model in MODEL_PRICES


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "gpt-x-secret-looking"])
def test_a_model_the_price_table_does_not_know_is_refused_at_start_naming_the_variable_only(model):
    with pytest.raises(ConfigError) as raised:
        AgentConfig.from_env(agent_env(HAPEX_LLM_MODEL=model))
    assert raised.value.variable == "HAPEX_LLM_MODEL"
    assert model not in str(raised.value)
    assert "claude-sonnet-5-5" in str(raised.value)  # it says which models would do


def test_a_priced_model_other_than_the_default_is_accepted():
    assert AgentConfig.from_env(agent_env(HAPEX_LLM_MODEL="claude-haiku-4-5")).llm_model == "claude-haiku-4-5"


@pytest.mark.parametrize("test_mode", [None, "0", "false"])
def test_loopback_webhooks_are_refused_outside_test_mode(test_mode):
    environ = agent_env(HAPEX_BENCH_ALLOW_LOOPBACK_WEBHOOKS="1")
    if test_mode is not None:
        environ["HAPEX_TEST_MODE"] = test_mode
    with pytest.raises(ConfigError) as refused:
        AgentConfig.from_env(environ)
    assert refused.value.variable == "HAPEX_BENCH_ALLOW_LOOPBACK_WEBHOOKS"


def test_the_intake_plans_each_query_for_its_client_and_the_agent_keeps_generic_plans(tmp_path):
    # A big client's runs page under a generic plan made for an average client read all its runs.
    assert IntakeConfig.from_env(intake_env(tmp_path)).pool.custom_plans is True
    assert IntakeConfig.pool.custom_plans is True
    assert AgentConfig.pool.custom_plans is False


def test_a_retention_shorter_than_the_longest_month_is_refused_so_this_months_costs_are_never_pruned():
    """At 30 days, the prune on the 31st deletes the 1st's cost events: the month's spend and its budget
    would read low. 31 days always reaches back before the start of the current (UTC) month."""
    with pytest.raises(ConfigError) as raised:
        AgentConfig.from_env(agent_env(HAPEX_RUN_RETENTION_DAYS="30"))
    assert "HAPEX_RUN_RETENTION_DAYS" in str(raised.value)
    assert AgentConfig.from_env(agent_env(HAPEX_RUN_RETENTION_DAYS="31")).limits.retention_days == 31
