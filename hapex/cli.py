"""`hapex`: the one operator command line.

    hapex db url | db migrate | db stop
    hapex serve intake | agent | worker
    hapex keys generate
    hapex credentials rotate [--batch-size N]
    hapex admin clients|reauth|failing|queue [--since DATE] [--until DATE] [--json]
    hapex doctor [intake|agent|worker]
    hapex site build OUT/ [--site-url URL] [--privacy FILE] [--terms FILE]
    hapex run            (the whole local stack, as `make run` starts it)
    hapex sandbox        (the local provider sandbox, as `hapex run` starts it)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hapex.settings import DEFAULT_PORTS, PORT_VARIABLES, LauncherSettings
from shared.config import ConfigError
from shared.structured_logging import configure_logging

GUNICORN_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "gunicorn.conf.py"
SERVICE_PORTS = {service: (PORT_VARIABLES[service], DEFAULT_PORTS[service]) for service in ("intake", "agent")}


def _fail(message: str, code: int = 2) -> int:
    print(f"hapex: {message}", file=sys.stderr)
    return code


def cmd_db_url(args: argparse.Namespace) -> int:
    from hapex.localstack.stack import local_database

    print(local_database(args.settings).owner_dsn)
    return 0


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from hapex.localstack.stack import local_database
    from shared.db.migrate import apply_migrations

    applied = apply_migrations(local_database(args.settings).owner_dsn)
    if applied:
        for migration in applied:
            print(f"applied {migration.version:04d}_{migration.name}")
    else:
        print("database is up to date")
    return 0


def cmd_db_stop(args: argparse.Namespace) -> int:
    from hapex.localstack import embedded_db
    from hapex.localstack.stack import embedded_pgdata

    embedded_db.stop(embedded_pgdata(args.settings))
    return 0


def cmd_keys_generate(args: argparse.Namespace) -> int:
    from hapex.localstack.local_secrets import new_encryption_key

    print(new_encryption_key())
    return 0


def _read_config(service: str, environ: Mapping[str, str]) -> Any:
    """The service's own configuration, read as it will read it: a bad one stops here, named."""
    if service == "intake":
        from intake.config import IntakeConfig

        return IntakeConfig.from_env(environ)
    from agent_service.config import AgentConfig

    return AgentConfig.from_env(environ)


def _check_database_credentials(service: str, database_url: str) -> None:
    """A refused role or password is configuration, said at once; an absent database is not judged here."""
    from shared.db.errors import DatabaseRefusedCredentials
    from shared.db.pool import check_credentials

    variable = "INTAKE_DATABASE_URL" if service == "intake" else "AGENT_DATABASE_URL"
    try:
        check_credentials(database_url)
    except DatabaseRefusedCredentials:
        # Never the server's text: it names the role and may echo parts of the URL.
        raise ConfigError(variable, "is refused by the database (wrong role or password)") from None


def cmd_serve(args: argparse.Namespace) -> int:
    service: str = args.service
    settings: LauncherSettings = args.settings
    if service == "intake":
        from hapex.localstack.stack import INTAKE_REFUSES

        for name, value in sorted(settings.environ.items()):
            if value and INTAKE_REFUSES.match(name):
                return _fail(f"configuration error: {name} must not be given to the intake (it never decrypts)")
    try:
        # Contradictory transport settings are refused before anything else is looked at.
        bind = settings.served_bind(service) if service != "worker" else ""
        config = _read_config(service, settings.environ)
        _check_database_credentials(service, config.database_url)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc.variable} {exc.problem}")
    if service in ("agent", "worker"):
        from agent_service.vault import VaultStartupError, check_agent_can_start

        try:
            check_agent_can_start(config)
        except VaultStartupError as exc:
            return _fail(f"cannot start: {exc}", 1)
    if service == "worker":
        from agent_service.worker import run_worker

        try:
            run_worker(config, concurrency=config.worker_concurrency)
        except ConfigError as exc:  # the database refused the worker's role or password while it ran
            return _fail(f"configuration error: {exc.variable} {exc.problem}")
        return 0
    for name, path in (("TLS_CERT_FILE", settings.tls_cert_file), ("TLS_KEY_FILE", settings.tls_key_file)):
        if settings.tls_by_proxy:
            break  # the balancer serves TLS: served_bind refused files given anyway
        if not path:
            return _fail(f"configuration error: {name} must be set (Hapex serves HTTPS only, unless "
                         "TLS_TERMINATION=proxy says the platform's balancer does)")
        if not os.path.isfile(path):
            return _fail(f"configuration error: {name} must name a readable file")
    env = dict(settings.environ)
    env["HAPEX_SERVICE"] = service
    env["HAPEX_BIND"] = bind
    module = "intake.wsgi:app" if service == "intake" else "agent_service.wsgi:app"
    argv = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), module]
    os.execve(sys.executable, argv, env)  # noqa: S606 - replaces this process with gunicorn
    return 0  # pragma: no cover


def cmd_credentials_rotate(args: argparse.Namespace) -> int:
    from agent_service.config import CredentialKeysConfig
    from agent_service.vault.rotation import run_rotate_command

    return run_rotate_command(sys.stdout, CredentialKeysConfig.from_env(args.settings.environ),
                              batch_size=args.batch_size)


def cmd_admin(args: argparse.Namespace) -> int:
    from agent_service.admin.terminal import run_admin_command
    from agent_service.config import ReportsConfig

    config = ReportsConfig.from_env(args.settings.environ)
    return run_admin_command(sys.stdout, sys.stderr, args.report, since=getattr(args, "since", None),
                             until=getattr(args, "until", None), as_json=args.json, config=config)


def cmd_doctor(args: argparse.Namespace) -> int:
    from hapex.doctor import run_doctor

    settings: LauncherSettings = args.settings
    local = _local_stack_environment(settings)
    if local is None:
        return run_doctor(sys.stdout, service=args.service, environ=settings.environ)
    # Beside `make run`: each service checked in the environment `hapex run` gives it.
    from hapex.localstack.stack import environment_for

    services = [args.service] if args.service else ["intake", "agent"]
    codes = [run_doctor(sys.stdout, service=name, environ=environment_for(name, local)) for name in services]
    return max(codes)


def _local_stack_environment(settings: LauncherSettings) -> dict[str, str] | None:
    """The local stack's environment when doctor runs in a plain shell beside a running `make run`."""
    if any(settings.environ.get(name) for name in ("INTAKE_DATABASE_URL", "AGENT_DATABASE_URL")):
        return None
    from hapex.localstack import embedded_db
    from hapex.localstack.paths import data_dir
    from hapex.localstack.stack import LocalDatabase, embedded_pgdata, local_environment

    if not (data_dir(settings.data_dir) / "secrets.env").exists():
        return None
    if settings.database_url:
        database = LocalDatabase(settings.database_url, None)
    else:
        pgdata = embedded_pgdata(settings)
        if not (pgdata / "postmaster.pid").exists():
            return None  # no local stack is running: check the shell's own environment, as in production
        database = LocalDatabase(embedded_db.ensure_running(pgdata), pgdata)
    print(f"hapex doctor: checking the local stack in {data_dir(settings.data_dir)}", flush=True)
    return local_environment(database, settings)


def cmd_site_build(args: argparse.Namespace) -> int:
    from intake.config import IntakeConfig
    from intake.public_site import SiteBuildError, build_site

    config = IntakeConfig.for_public_site(args.settings.environ)
    try:
        built = build_site(config, Path(args.out), site_url=args.site_url, privacy=args.privacy, terms=args.terms)
    except SiteBuildError as exc:
        return _fail(f"site build: {exc}", 1)
    print(f"wrote {len(built.files)} files to {built.out} (serve them with the headers in {built.out}/_headers)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from hapex.localstack.stack import run_stack

    settings: LauncherSettings = args.settings
    return run_stack(settings, workers=settings.workers if args.workers is None else args.workers)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from hapex.sandbox.serve import serve
    from hapex.settings import SandboxSettings

    return serve(SandboxSettings.from_env(args.settings.environ))


def _batch_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError("must be between 1 and 1000")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hapex", description="Operate Hapex.")
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="the database").add_subparsers(dest="db_command", required=True)
    db.add_parser("url", help="print the DSN in use, starting the embedded server if needed").set_defaults(
        handler=cmd_db_url
    )
    db.add_parser("migrate", help="apply pending migrations as the owner role").set_defaults(
        handler=cmd_db_migrate
    )
    db.add_parser("stop", help="stop the embedded server under .data/").set_defaults(handler=cmd_db_stop)

    serve = commands.add_parser("serve", help="run one service in the foreground")
    serve.add_argument("service", choices=["intake", "agent", "worker"])
    serve.set_defaults(handler=cmd_serve)

    keys = commands.add_parser("keys", help="encryption keys").add_subparsers(dest="keys_command", required=True)
    keys.add_parser("generate", help="print a fresh CREDENTIAL_ENCRYPTION_KEY").set_defaults(
        handler=cmd_keys_generate
    )

    credentials = commands.add_parser("credentials", help="stored credentials").add_subparsers(
        dest="credentials_command", required=True
    )
    rotate = credentials.add_parser(
        "rotate", help="re-encrypt every credential under a retired key with the primary key"
    )
    rotate.add_argument("--batch-size", type=_batch_size, default=500)
    rotate.set_defaults(handler=cmd_credentials_rotate)

    admin = commands.add_parser(
        "admin", help="operator reports across clients, read through AGENT_DATABASE_URL"
    ).add_subparsers(dest="report", required=True)
    for report, text, period in (
        ("clients", "each client's runs, failure rate and cost over a period", True),
        ("reauth", "connections waiting for their client to reconnect them", False),
        ("failing", "automations with failed runs over a period, or paused", True),
        ("queue", "job queue depth and worker heartbeats", False),
    ):
        command = admin.add_parser(report, help=text)
        if period:
            command.add_argument("--since", help="first day, YYYY-MM-DD (UTC); default: 29 days before --until")
            command.add_argument("--until", help="last day, YYYY-MM-DD (UTC); default: today")
        command.add_argument("--json", action="store_true", help="print JSON, as the admin API answers")
        command.set_defaults(handler=cmd_admin)

    doctor = commands.add_parser(
        "doctor", help="check configuration, TLS files, database, migrations and keys; print what to fix"
    )
    doctor.add_argument("service", nargs="?", choices=["intake", "agent", "worker"],
                        help="the service whose environment this is (default: guessed from it)")
    doctor.set_defaults(handler=cmd_doctor)

    site = commands.add_parser("site", help="the public site").add_subparsers(dest="site_command", required=True)
    build = site.add_parser("build", help="render the public pages to static files for a CDN (INTAKE_PUBLIC_URL: "
                                          "where their sign-up and log-in links go)")
    build.add_argument("out", help="the directory to write the site into")
    build.add_argument("--site-url", help="the site's own https:// origin (security.txt's Policy and Canonical)")
    build.add_argument("--privacy", type=Path, help="your privacy notice, an HTML fragment (else a placeholder)")
    build.add_argument("--terms", type=Path, help="your terms of service, an HTML fragment (else a placeholder)")
    build.set_defaults(handler=cmd_site_build)

    run = commands.add_parser("run", help="the whole local stack, in the foreground")
    run.add_argument("--workers", type=int, default=None, help="how many workers (default: HAPEX_WORKERS, else 1)")
    run.set_defaults(handler=cmd_run)

    commands.add_parser("sandbox", help="the local provider sandbox (started by `hapex run`; never in production)"
                        ).set_defaults(handler=cmd_sandbox)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # The one read of the process environment; everything below takes it from here.
        args.settings = LauncherSettings.from_env()
        # The same JSON lines, redactor and clamps as the services, for what the command's own work logs.
        configure_logging("hapex", args.settings.log_level, log_format=args.settings.log_format)
        return int(args.handler(args))
    except ConfigError as exc:
        return _fail(f"configuration error: {exc.variable} {exc.problem}")


if __name__ == "__main__":
    sys.exit(main())
