"""`hapex`: the one operator command line.

    hapex db url | db migrate | db stop
    hapex serve intake | agent | worker
    hapex keys generate
    hapex credentials rotate [--batch-size N]
    hapex admin clients|reauth|failing|queue [--since DATE] [--until DATE] [--json]
    hapex doctor [intake|agent|worker]
    hapex run            (the whole local stack, as `make run` starts it)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.config import ConfigError

GUNICORN_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "gunicorn.conf.py"
SERVICE_PORTS = {"intake": ("INTAKE_PORT", 8443), "agent": ("AGENT_PORT", 8444)}


def _fail(message: str, code: int = 2) -> int:
    print(f"hapex: {message}", file=sys.stderr)
    return code


def cmd_db_url(args: argparse.Namespace) -> int:
    from hapex.localstack.stack import local_database

    print(local_database().owner_dsn)
    return 0


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from hapex.localstack.stack import local_database
    from shared.db.migrate import apply_migrations

    applied = apply_migrations(local_database().owner_dsn)
    if applied:
        for migration in applied:
            print(f"applied {migration.version:04d}_{migration.name}")
    else:
        print("database is up to date")
    return 0


def cmd_db_stop(args: argparse.Namespace) -> int:
    from hapex.localstack import embedded_db
    from hapex.localstack.stack import embedded_pgdata

    embedded_db.stop(embedded_pgdata())
    return 0


def cmd_keys_generate(args: argparse.Namespace) -> int:
    from hapex.localstack.local_secrets import new_encryption_key

    print(new_encryption_key())
    return 0


def _check_config(service: str) -> None:
    if service == "intake":
        from intake.config import IntakeConfig

        IntakeConfig.from_env()
    else:
        from agent_service.config import AgentConfig

        AgentConfig.from_env()


def _check_credential_keys() -> None:
    from agent_service.config import AgentConfig
    from agent_service.vault import check_agent_can_start

    check_agent_can_start(AgentConfig.from_env())


def cmd_serve(args: argparse.Namespace) -> int:
    service: str = args.service
    if service == "intake":
        from hapex.localstack.stack import INTAKE_REFUSES

        for name, value in sorted(os.environ.items()):
            if value and INTAKE_REFUSES.match(name):
                return _fail(f"configuration error: {name} must not be given to the intake (it never decrypts)")
    try:
        _check_config("agent" if service == "worker" else service)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc.variable} {exc.problem}")
    if service in ("agent", "worker"):
        from agent_service.vault import VaultStartupError

        try:
            _check_credential_keys()
        except VaultStartupError as exc:
            return _fail(f"cannot start: {exc}", 1)
    if service == "worker":
        from agent_service.config import AgentConfig
        from agent_service.worker import run_worker

        run_worker(AgentConfig.from_env(), concurrency=int(os.environ.get("WORKER_CONCURRENCY", "4")))
        return 0
    for name in ("TLS_CERT_FILE", "TLS_KEY_FILE"):
        if not os.environ.get(name):
            return _fail(f"configuration error: {name} must be set (Hapex serves HTTPS only)")
        if not os.path.isfile(os.environ[name]):
            return _fail(f"configuration error: {name} must name a readable file")
    port_variable, default_port = SERVICE_PORTS[service]
    host = os.environ.get("HAPEX_BIND_HOST", "0.0.0.0")  # noqa: S104 - containers listen on all
    env = dict(os.environ)
    env["HAPEX_SERVICE"] = service
    env.setdefault("HAPEX_BIND", f"{host}:{os.environ.get(port_variable, default_port)}")
    module = "intake.wsgi:app" if service == "intake" else "agent_service.wsgi:app"
    argv = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), module]
    os.execve(sys.executable, argv, env)  # noqa: S606 - replaces this process with gunicorn
    return 0  # pragma: no cover


def cmd_credentials_rotate(args: argparse.Namespace) -> int:
    from agent_service.vault.rotation import run_rotate_command

    return run_rotate_command(sys.stdout, batch_size=args.batch_size)


def cmd_admin(args: argparse.Namespace) -> int:
    from agent_service.admin.terminal import run_admin_command

    return run_admin_command(sys.stdout, sys.stderr, args.report, since=getattr(args, "since", None),
                             until=getattr(args, "until", None), as_json=args.json)


def cmd_doctor(args: argparse.Namespace) -> int:
    from hapex.doctor import run_doctor

    return run_doctor(sys.stdout, service=args.service)


def cmd_run(args: argparse.Namespace) -> int:
    from hapex.localstack.stack import run_stack

    return run_stack(workers=args.workers)


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

    run = commands.add_parser("run", help="the whole local stack, in the foreground")
    run.add_argument("--workers", type=int, default=int(os.environ.get("HAPEX_WORKERS", "1")))
    run.set_defaults(handler=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        return _fail(f"configuration error: {exc.variable} {exc.problem}")


if __name__ == "__main__":
    sys.exit(main())
