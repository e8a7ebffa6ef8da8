"""`hapex doctor`: what /readyz checks, plus the configuration, each problem with what to fix.

Run it in the environment of the service to check (`docker compose exec agent hapex doctor`);
`hapex`'s entry point hands that environment here, and each service's config class reads it.
It names variables and what is wrong with them, never their values; database errors are
reported without the connection string's password.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from hapex.settings import LauncherSettings
from shared.config import ConfigError, Environment, tls_terminated_by_proxy

SERVICES = ("intake", "agent", "worker")
CERT_WARNING = timedelta(days=14)

# What to do about a variable that is missing or malformed.
FIXES = {
    "AGENT_DATABASE_URL": "set it to postgresql://hapex_agent:PASSWORD@HOST:5432/DB (the agent role, not the owner)",
    "INTAKE_DATABASE_URL": "set it to postgresql://hapex_intake:PASSWORD@HOST:5432/DB (the intake role)",
    "AGENT_SERVICE_TOKEN": 'make one with python3 -c "import secrets; print(secrets.token_urlsafe(32))" and give '
                           "the same value to the intake, the agent and the workers",
    "AGENT_SERVICE_TOKEN_PREVIOUS": "leave it empty unless rotating the service token",
    "AGENT_ADMIN_TOKEN": "make a random token of 32+ characters, different from AGENT_SERVICE_TOKEN",
    "CREDENTIAL_ENCRYPTION_KEY": "set the key the stored credentials were encrypted with; a new deployment makes "
                                 "one with `hapex keys generate`",
    "CREDENTIAL_ENCRYPTION_KEYS_RETIRED": "list retired keys comma-separated, each base64 of 32 bytes",
    "INTAKE_SESSION_SECRET": "make a random token of 32+ characters",
    "AGENT_SERVICE_URL": "set it to the agent's https:// address, e.g. https://agent:8444",
    "AGENT_SERVICE_CA": "point it at the PEM file of the CA that signed the agent's certificate, or leave it empty",
    "TLS_CERT_FILE": "point it at a readable PEM certificate (chain) for this service",
    "TLS_KEY_FILE": "point it at the readable PEM private key of TLS_CERT_FILE",
}


@dataclass
class Report:
    """The findings of one run: each check passed, warned about, or failed with a fix."""

    out: TextIO
    problems: int = 0
    warnings: int = 0
    lines: list[str] = field(default_factory=list)

    def ok(self, what: str) -> None:
        self._print(f"  ok    {what}")

    def warn(self, what: str, fix: str | None = None) -> None:
        self.warnings += 1
        self._print(f"  warn  {what}")
        if fix:
            self._print(f"        fix: {fix}")

    def fail(self, what: str, fix: str | None = None) -> None:
        self.problems += 1
        self._print(f"  FAIL  {what}")
        if fix:
            self._print(f"        fix: {fix}")

    def heading(self, text: str) -> None:
        self._print(text)

    def _print(self, line: str) -> None:
        self.lines.append(line)
        print(line, file=self.out)


def services_to_check(environ: Mapping[str, str], requested: str | None) -> list[str]:
    """The service asked for; else those whose database variable is set; else intake and agent."""
    if requested:
        return [requested]
    env = Environment(environ)
    found = [name for name, variable in (("intake", "INTAKE_DATABASE_URL"), ("agent", "AGENT_DATABASE_URL"))
             if env.get(variable)]
    return found or ["intake", "agent"]


def run_doctor(out: TextIO, *, environ: Mapping[str, str], service: str | None = None,
               timeout: float = 5.0) -> int:
    """Check each service's configuration, database, keys and peers; 0 when nothing failed."""
    environ = dict(environ)
    report = Report(out)
    for name in services_to_check(environ, service):
        report.heading(f"hapex doctor: {name}")
        if name == "intake":
            _check_intake(report, environ, timeout=timeout)
        else:
            # A guessed "agent" may be a worker, which serves nothing: TLS is checked if set.
            tls = "required" if service == "agent" else "none" if service == "worker" else "if_set"
            _check_agent(report, environ, tls=tls, timeout=timeout)
    if report.problems:
        report.heading(f"{report.problems} problem{'s' if report.problems != 1 else ''} to fix"
                       f"{f', {report.warnings} warning(s)' if report.warnings else ''}.")
        return 1
    report.heading("No problems found." + (f" {report.warnings} warning(s)." if report.warnings else ""))
    return 0


# --- configuration -----------------------------------------------------------------------


def _variable(report: Report, name: str, read: Callable[[], Any], *, optional: bool = False) -> bool:
    """Run one reader; report the variable as well-formed or what is wrong with it."""
    try:
        value = read()
    except ConfigError as exc:
        report.fail(f"{exc.variable} {exc.problem}", FIXES.get(exc.variable))
        return False
    if value is None and optional:
        report.ok(f"{name} not set (optional)")
    else:
        report.ok(f"{name} is set and well-formed")
    return True


def _whole_config(report: Report, build: Callable[[], Any]) -> Any:
    """The service's own start-up check, for what the variable checks cannot see alone."""
    try:
        return build()
    except ConfigError as exc:
        report.fail(f"{exc.variable} {exc.problem}", FIXES.get(exc.variable))
        return None


def _check_agent(report: Report, environ: dict[str, str], *, tls: str, timeout: float) -> None:
    from agent_service.config import SMTP_VARIABLES, AgentConfig, RunLimits, smtp_settings
    from agent_service.vault.keys import parse_key, parse_key_list

    env = Environment(environ)
    checks = [
        _variable(report, "AGENT_DATABASE_URL", lambda: env.database_url("AGENT_DATABASE_URL")),
        _variable(report, "AGENT_SERVICE_TOKEN", lambda: env.secret_token("AGENT_SERVICE_TOKEN")),
        _variable(report, "AGENT_SERVICE_TOKEN_PREVIOUS",
                  lambda: env.secret_token("AGENT_SERVICE_TOKEN_PREVIOUS", required=False), optional=True),
        _variable(report, "AGENT_ADMIN_TOKEN", lambda: env.secret_token("AGENT_ADMIN_TOKEN")),
        _variable(report, "CREDENTIAL_ENCRYPTION_KEY",
                  lambda: parse_key("CREDENTIAL_ENCRYPTION_KEY", env.require("CREDENTIAL_ENCRYPTION_KEY"))),
        _variable(report, "CREDENTIAL_ENCRYPTION_KEYS_RETIRED",
                  lambda: parse_key_list("CREDENTIAL_ENCRYPTION_KEYS_RETIRED",
                                         env.get("CREDENTIAL_ENCRYPTION_KEYS_RETIRED")) or None, optional=True),
    ]
    # SMTP and the run limits are reported on their own below, and do not stop the database checks.
    reported_apart = {*SMTP_VARIABLES, *RunLimits.VARIABLES}
    core = {name: value for name, value in environ.items() if name not in reported_apart}
    config = _whole_config(report, lambda: AgentConfig.from_env(core)) if all(checks) else None
    _whole_config(report, lambda: RunLimits.from_env(env))
    try:
        smtp = smtp_settings(env)
    except ConfigError as exc:
        report.fail(f"{exc.variable} {exc.problem}", "fix the HAPEX_SMTP_* settings, or unset HAPEX_SMTP_HOST "
                                                     "to keep notices in the app only")
    else:
        if smtp is None:
            report.warn("HAPEX_SMTP_HOST not set: notices to clients appear in the intake app only",
                        "set HAPEX_SMTP_* to email them too")
        else:
            report.ok(f"SMTP settings well-formed ({'TLS' if smtp.implicit_tls or smtp.starttls else 'no TLS'})")
    if tls == "required" or (tls == "if_set" and (env.get("TLS_CERT_FILE") or env.get("TLS_KEY_FILE"))):
        _check_tls(report, environ)
    elif tls == "if_set":
        report.warn("TLS_CERT_FILE not set: fine for a worker, but `hapex serve agent` needs it",
                    "run `hapex doctor agent` or `hapex doctor worker` to say which this is")
    if config is None:
        return
    database = _open_database(report, config.database_url, "AGENT_DATABASE_URL", "hapex_agent", timeout)
    if database is None:
        return
    try:
        _check_database(report, database)
        _check_keys(report, config, database)
    finally:
        database.close()


def _check_intake(report: Report, environ: dict[str, str], *, timeout: float) -> None:
    from intake.config import IntakeConfig

    env = Environment(environ)
    checks = [
        _variable(report, "INTAKE_DATABASE_URL", lambda: env.database_url("INTAKE_DATABASE_URL")),
        _variable(report, "INTAKE_SESSION_SECRET", lambda: env.secret_token("INTAKE_SESSION_SECRET")),
        _variable(report, "AGENT_SERVICE_TOKEN", lambda: env.secret_token("AGENT_SERVICE_TOKEN")),
        _variable(report, "AGENT_SERVICE_URL", lambda: env.https_url("AGENT_SERVICE_URL")),
        _variable(report, "AGENT_SERVICE_CA", lambda: env.existing_file("AGENT_SERVICE_CA", required=False),
                  optional=True),
    ]
    if env.get("CREDENTIAL_ENCRYPTION_KEY"):
        report.fail("CREDENTIAL_ENCRYPTION_KEY is set in the intake's environment",
                    "remove it: only the agent and the workers may hold the encryption key")
    config = _whole_config(report, lambda: IntakeConfig.from_env(environ)) if all(checks) else None
    _check_tls(report, environ)
    if config is None:
        return
    database = _open_database(report, config.database_url, "INTAKE_DATABASE_URL", "hapex_intake", timeout)
    if database is not None:
        try:
            _check_database(report, database)
        finally:
            database.close()
    _check_agent_reachable(report, config)


# --- TLS ---------------------------------------------------------------------------------


def _check_tls(report: Report, environ: dict[str, str]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    env = Environment(environ)
    try:
        by_proxy = tls_terminated_by_proxy(env)
        if by_proxy:
            LauncherSettings.from_env(environ).served_bind("intake")
    except ConfigError as exc:
        report.fail(f"{exc.variable} {exc.problem}", "see TLS_TERMINATION in .env.example and deploy/README.md")
        return
    if by_proxy:
        report.ok("TLS served by the platform's balancer (TLS_TERMINATION=proxy), plain HTTP on a private address only")
        return
    cert_path, key_path = env.get("TLS_CERT_FILE"), env.get("TLS_KEY_FILE")
    for name, path in (("TLS_CERT_FILE", cert_path), ("TLS_KEY_FILE", key_path)):
        if path is None:
            report.fail(f"{name} must be set (Hapex serves HTTPS only)", FIXES[name])
            return
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            report.fail(f"{name} must name a readable file", FIXES[name])
            return
    assert cert_path is not None and key_path is not None
    try:
        with open(cert_path, "rb") as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
    except ValueError:
        report.fail("TLS_CERT_FILE is not a PEM certificate", FIXES["TLS_CERT_FILE"])
        return
    try:
        with open(key_path, "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), password=None)
    except (ValueError, TypeError):
        report.fail("TLS_KEY_FILE is not an unencrypted PEM private key", FIXES["TLS_KEY_FILE"])
        return
    now = datetime.now(UTC)
    expires = cert.not_valid_after_utc
    if expires <= now:
        report.fail(f"TLS_CERT_FILE expired on {expires:%Y-%m-%d}", "renew the certificate")
    elif cert.not_valid_before_utc > now:
        report.fail(f"TLS_CERT_FILE is not valid before {cert.not_valid_before_utc:%Y-%m-%d}",
                    "check the certificate and this machine's clock")
    elif expires - now < CERT_WARNING:
        report.warn(f"TLS_CERT_FILE expires on {expires:%Y-%m-%d}", "renew the certificate soon")
    else:
        report.ok(f"TLS certificate valid until {expires:%Y-%m-%d}")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != cert.public_key().public_bytes(
            serialization.Encoding.DER, public):
        report.fail("TLS_KEY_FILE is not the key of TLS_CERT_FILE", "pair the certificate with its own key")
    else:
        report.ok("TLS key matches the certificate")


# --- the database ------------------------------------------------------------------------


def _safe_error(exc: BaseException, dsn: str) -> str:
    """The first line of a database error, without the connection string's password."""
    import psycopg

    from shared.structured_logging import redact

    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    try:
        password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        password = None
    if password:
        text = text.replace(str(password), "********")
    return redact(text)[:300]


def _open_database(report: Report, dsn: str, variable: str, role: str, timeout: float) -> Any:
    import psycopg

    from shared.db import Database

    try:
        with psycopg.connect(dsn, connect_timeout=max(1, int(timeout)), autocommit=True) as conn:
            user = conn.execute("SELECT current_user").fetchone()
    except psycopg.Error as exc:
        report.fail(f"cannot connect to the database of {variable}: {_safe_error(exc, dsn)}",
                    "check that PostgreSQL is running and reachable, and the role and password in " + variable)
        return None
    name = user[0] if user else "?"
    report.ok(f"database reachable as {name}")
    if name != role:
        report.warn(f"{variable} logs in as {name}, not {role}", f"use the {role} role")
    return Database(dsn, name="hapex-doctor").open(timeout=timeout)


def _check_database(report: Report, database: Any) -> None:
    from shared.db import DatabaseError
    from shared.db.migrate import discover

    try:
        database.assert_role_is_confined()
    except DatabaseError:
        report.fail("the database role is a superuser, bypasses row-level security or owns tables",
                    "log in as the service role (hapex_intake or hapex_agent), never the owner")
    else:
        report.ok("the database role is confined by row-level security")
    try:
        with database.connection() as conn:
            done = {row[0] for row in conn.execute("SELECT version FROM hapex_migrations")}
    except Exception:  # noqa: BLE001 - any failure here means the migrations cannot be confirmed
        report.fail("cannot read which migrations are applied", "run `hapex db migrate` as the owner")
        return
    missing = [f"{m.version:04d}_{m.name}" for m in discover() if m.version not in done]
    if missing:
        report.fail(f"migrations not applied: {', '.join(missing)}", "run `hapex db migrate` as the owner")
    else:
        report.ok("every migration is applied")


def _check_keys(report: Report, config: Any, database: Any) -> None:
    from agent_service.vault import VaultStartupError
    from agent_service.vault.keyring import Keyring
    from agent_service.vault.startup import check_credential_keys

    keyring = Keyring.from_config(config)
    try:
        census = check_credential_keys(database, keyring)
    except VaultStartupError as exc:
        report.fail(f"credential keys: {exc}", "deploy the missing key(s) before starting the agent or workers")
        return
    report.ok(f"every stored credential and step output is under a key held here"
              f" ({sum(census.values())} sealed row(s))")


def _check_agent_reachable(report: Report, config: Any) -> None:
    from intake.agent_client import AgentClient, AgentRefused, AgentUnavailable

    try:
        readiness = AgentClient(config).check_ready()
    except AgentUnavailable:
        report.fail(f"the agent at AGENT_SERVICE_URL is unreachable or not ready ({config.agent_service_url})",
                    "start the agent, check AGENT_SERVICE_URL and that AGENT_SERVICE_CA verifies its certificate")
    except AgentRefused as refused:
        report.fail(f"the agent answered /readyz with {refused.status}", "run `hapex doctor agent` there")
    else:
        if readiness.ready:
            report.ok("the agent is reachable over HTTPS and ready")
        else:
            report.fail(f"the agent answered /readyz with 503 (not ready: {', '.join(readiness.failed) or 'unsaid'})",
                        "run `hapex doctor agent` there")
