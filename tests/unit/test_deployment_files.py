"""The deployment files agree with the code: the variables it reads, its commands, its ports.

What the code reads comes from the config classes themselves (each declares its variables and
cannot read another; tests/unit/test_config.py checks each declaration is exact), so renaming
a variable in the code without updating docker-compose.yml and .env.example (or the other way
round) fails here.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import shlex
import tomllib
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from agent_service.config import AgentConfig, CredentialKeysConfig, ReportsConfig
from agent_service.vault.keys import parse_key
from hapex.cli import SERVICE_PORTS, build_parser
from hapex.settings import GunicornSettings, LauncherSettings
from intake.config import IntakeConfig
from shared.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
POSTGRES_INIT = ROOT / "deploy" / "postgres-init"
README = ROOT / "deploy" / "README.md"
MIGRATIONS = ROOT / "shared" / "migrations"

HAPEX_SERVICES = ("migrate", "intake", "agent", "worker")
SERVED = {"intake", "agent"}
# Variables of the postgres image itself (hub.docker.com/_/postgres), not of Hapex.
POSTGRES_IMAGE_VARIABLES = {
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "POSTGRES_INITDB_ARGS",
    "POSTGRES_HOST_AUTH_METHOD",
    "PGDATA",
}
# Read by tests/conftest.py (the test suite's database), documented in .env.example beside the others.
TEST_SUITE_VARIABLES = {"TEST_DATABASE_URL"}

_NAME = r"[A-Z][A-Z0-9_]*"
_INTERPOLATION = re.compile(r"\$\{(" + _NAME + r")(?:(:?[-?])([^}]*))?\}")
_SHELL_VARIABLE = re.compile(r"\$\{?(" + _NAME + r")")
_PSQL_GETENV = re.compile(r"\\getenv\s+\w+\s+(" + _NAME + r")")
# NAME=value, or a family such as HAPEX_<PROVIDER>_TOKEN_URL=value; commented out or not.
_ENV_LINE = re.compile(r"^(#\s*)?([A-Z<][A-Z0-9_<>]*)=(.*)$")
_SECRET_WORDS = re.compile(r"ENCRYPTION_KEY|TOKEN|SECRET|PASSWORD$|API_KEY$")


# --- what the code reads, from its config classes ------------------------------------------

# What each container's processes build: every container runs `hapex` (LauncherSettings); the
# served ones start gunicorn (GunicornSettings) and their app; the worker builds AgentConfig;
# `hapex credentials rotate` and `hapex admin` run in the agent's container.
CONTAINER_CONFIGS = {
    "migrate": (LauncherSettings,),
    "intake": (LauncherSettings, GunicornSettings, IntakeConfig),
    "agent": (LauncherSettings, GunicornSettings, AgentConfig, CredentialKeysConfig, ReportsConfig),
    "worker": (LauncherSettings, AgentConfig),
}
# The settings `hapex` itself reads or sets for gunicorn: compose keeps their defaults.
LAUNCHER = set(LauncherSettings.variables()) | {"HAPEX_SERVICE", "HAPEX_BIND"}


def names_read_by(name: str) -> set[str]:
    return {variable for config in CONTAINER_CONFIGS[name] for variable in config.variables()}


def service_settings(name: str) -> set[str]:
    """What the service's own configuration reads (not the launcher's): compose must pass these."""
    names = names_read_by(name) - LAUNCHER
    if name == "agent":
        names -= set(AgentConfig.WORKER_ONLY)
    return names


def all_names_read() -> set[str]:
    return {variable for name in HAPEX_SERVICES for variable in names_read_by(name)} | TEST_SUITE_VARIABLES


def secret_names() -> set[str]:
    return {name for name in all_names_read() if _SECRET_WORDS.search(name)}


# --- the files under test ----------------------------------------------------------------


@cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def service(name: str) -> dict:
    return compose()["services"][name]


def environment(name: str) -> dict[str, str]:
    env = service(name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command_argv(name: str) -> list[str]:
    command = service(name).get("command")
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def container_ports(name: str) -> set[int]:
    ports = set()
    for entry in service(name).get("ports") or []:
        target = entry["target"] if isinstance(entry, dict) else str(entry).rsplit(":", 1)[-1]
        ports.add(int(str(target).split("/")[0]))
    return ports


def bind_mounts(name: str) -> dict[str, str]:
    """Container path -> host path, for every bind mount of a service."""
    mounts = {}
    for entry in service(name).get("volumes") or []:
        if isinstance(entry, dict):
            if entry.get("type") == "bind":
                mounts[entry["target"]] = entry["source"]
        else:
            source, _, rest = str(entry).partition(":")
            if source.startswith((".", "/")):
                mounts[rest.split(":")[0]] = source
    return mounts


def parse_url(value: str):
    """urlsplit, with each ${...} reference replaced by a marker (it may contain '?')."""
    return urlsplit(_INTERPOLATION.sub(REFERENCE, value))


REFERENCE = "INTERPOLATED-REFERENCE"


def documented(name: str, entries) -> bool:
    """Whether .env.example documents a name, itself or as a family (HAPEX_<PROVIDER>_X)."""
    return any(re.fullmatch(_family_regex(entry), name) for entry in entries)


def _family_regex(entry: str) -> str:
    return "".join("[A-Z0-9_]+" if part.startswith("<") else re.escape(part) for part in re.split(r"(<\w+>)", entry))


def env_example() -> dict[str, tuple[str, bool]]:
    """Name -> (value, commented out), for every NAME=value line of .env.example."""
    entries = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _ENV_LINE.match(line.strip())
        if match:
            entries[match.group(2)] = (match.group(3), bool(match.group(1)))
    return entries


def init_scripts() -> list[Path]:
    return sorted(path for path in POSTGRES_INIT.iterdir() if path.is_file())


def names_used_by_postgres_init() -> set[str]:
    names = set()
    for path in init_scripts():
        text = path.read_text(encoding="utf-8")
        names |= set(_SHELL_VARIABLE.findall(text)) | set(_PSQL_GETENV.findall(text))
    return names


def compose_only_names() -> set[str]:
    """Interpolated names that are for the postgres container, not for Hapex code."""
    return set(environment("postgres")) - all_names_read()


# --- docker-compose.yml -------------------------------------------------------------------


def test_compose_has_every_service():
    assert {"postgres", *HAPEX_SERVICES} <= set(compose()["services"])


def test_hapex_services_use_the_image_built_from_deploy_dockerfile():
    images = set()
    for name in HAPEX_SERVICES:
        build = service(name).get("build")
        assert isinstance(build, dict), f"{name} is not built from deploy/Dockerfile"
        assert (ROOT / build.get("context", ".")).resolve() == ROOT, name
        assert (ROOT / build.get("context", ".") / build["dockerfile"]).resolve() == DOCKERFILE, name
        images.add(service(name).get("image"))
    assert len(images) == 1, f"the Hapex services should share one image, not {images}"


def test_served_services_publish_the_ports_the_cli_listens_on():
    for name in SERVED:
        port_variable, default_port = SERVICE_PORTS[name]
        assert port_variable not in environment(name), "compose should keep the CLI's default port"
        assert default_port in container_ports(name), f"{name} does not publish {default_port}"
    assert container_ports("intake") == {SERVICE_PORTS["intake"][1]}
    assert container_ports("agent") == {SERVICE_PORTS["agent"][1]}


def test_commands_are_real_hapex_subcommands():
    parser = build_parser()
    expected = {
        "migrate": ["db", "migrate"],
        "intake": ["serve", "intake"],
        "agent": ["serve", "agent"],
        "worker": ["serve", "worker"],
    }
    for name in HAPEX_SERVICES:
        argv = command_argv(name)
        assert argv[0] == "hapex", f"{name} does not run the hapex command"
        try:
            parser.parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"{name}: `{' '.join(argv)}` is not a hapex command")
        assert argv[1:] == expected[name]


def test_every_variable_a_hapex_service_gets_is_one_its_code_reads():
    for name in HAPEX_SERVICES:
        unknown = set(environment(name)) - names_read_by(name)
        assert not unknown, f"{name} gets variables its code never reads: {sorted(unknown)}"


def test_every_setting_a_service_reads_can_be_set_in_compose_or_is_documented_as_not_for_it():
    """What .env.example documents for deployments reaches each service that reads it; the rest
    (provider endpoint families, test and benchmark switches) is commented out there."""
    entries = env_example()
    not_for_compose = {entry for entry, (_, commented) in entries.items() if commented}
    for name in ("intake", "agent", "worker"):
        given = set(environment(name))
        for variable in sorted(service_settings(name) - given):
            assert documented(variable, not_for_compose), (
                f"{name} reads {variable} but docker-compose.yml does not pass it: add it to {name}'s "
                "environment, or comment it out in .env.example saying why deployments leave it unset"
            )


def test_every_interpolated_variable_is_read_by_the_code_or_by_postgres():
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    interpolated = {match[0] for match in _INTERPOLATION.findall(text)}
    allowed = all_names_read() | compose_only_names()
    unknown = interpolated - allowed
    assert not unknown, f"docker-compose.yml refers to variables nothing reads: {sorted(unknown)}"


def test_postgres_gets_only_its_image_variables_and_what_the_init_script_uses():
    given = set(environment("postgres"))
    used = names_used_by_postgres_init()
    assert given <= POSTGRES_IMAGE_VARIABLES | used, given - POSTGRES_IMAGE_VARIABLES - used
    assert used <= given | POSTGRES_IMAGE_VARIABLES, f"init script needs {sorted(used - given)}"
    mounted = {Path(source).name for source in bind_mounts("postgres").values()}
    assert {path.name for path in init_scripts()} <= mounted


def test_services_take_no_env_file():
    # env_file hands a service every variable in the file; each service lists its own instead.
    for name in compose()["services"]:
        assert "env_file" not in service(name), f"{name} uses env_file: list its variables instead"


def test_the_intake_is_never_handed_an_agent_only_secret():
    intake = environment("intake")
    agent_only = (names_read_by("agent") | names_read_by("worker")) - names_read_by("intake")
    client_secrets = {name for name in agent_only if name.endswith("_CLIENT_SECRET")}
    assert {"CREDENTIAL_ENCRYPTION_KEY", "AGENT_ADMIN_TOKEN", "ANTHROPIC_API_KEY", "HAPEX_SMTP_PASSWORD"} <= agent_only
    assert client_secrets and not [name for name in IntakeConfig.variables() if name.endswith("_CLIENT_SECRET")]
    assert not set(intake) & agent_only, f"intake gets agent-only variables: {set(intake) & agent_only}"
    for key, value in intake.items():
        referenced = {match[0] for match in _INTERPOLATION.findall(value)}
        assert not referenced & agent_only, f"intake's {key} interpolates {referenced & agent_only}"
        assert not key.startswith("CREDENTIAL_ENCRYPTION")
    assert "env_file" not in service("intake")
    # Nor the agent's TLS key.
    intake_sources = set(bind_mounts("intake").values())
    agent_key = bind_mounts("agent")[environment("agent")["TLS_KEY_FILE"]]
    assert agent_key not in intake_sources


def test_the_migration_runs_as_the_owner_and_the_services_as_their_roles():
    roles_sql = "\n".join(path.read_text(encoding="utf-8") for path in MIGRATIONS.glob("*.sql"))
    assert "DATABASE_URL" in LauncherSettings.variables()
    assert set(environment("migrate")) == {"DATABASE_URL"}
    expected = {
        "intake": ("INTAKE_DATABASE_URL", "hapex_intake"),
        "agent": ("AGENT_DATABASE_URL", "hapex_agent"),
        "worker": ("AGENT_DATABASE_URL", "hapex_agent"),
    }
    for name, (variable, role) in expected.items():
        assert variable in names_read_by(name)
        assert role in roles_sql, f"no migration creates {role}"
        assert parse_url(environment(name)[variable]).username == role
        assert "DATABASE_URL" not in environment(name), f"{name} must not get the owner's URL"
    owner = parse_url(environment("migrate")["DATABASE_URL"]).username
    assert owner == environment("postgres")["POSTGRES_USER"]
    depends = service("migrate")["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in service("postgres")
    for name in ("intake", "agent", "worker"):
        assert service(name)["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_tls_between_the_services():
    intake, agent = environment("intake"), environment("agent")
    url = parse_url(intake["AGENT_SERVICE_URL"])
    assert url.scheme == "https"
    assert url.hostname == "agent" and url.port == SERVICE_PORTS["agent"][1]
    for name, env in (("intake", intake), ("agent", agent)):
        mounts = bind_mounts(name)
        for variable in ("TLS_CERT_FILE", "TLS_KEY_FILE"):
            assert variable in names_read_by(name)
            assert env[variable] in mounts, f"{name}'s {variable} is not mounted"
            assert mounts[env[variable]].startswith("./deploy/tls/")
    assert bind_mounts("intake")[intake["AGENT_SERVICE_CA"]].startswith("./deploy/tls/")
    assert "TLS_KEY_FILE" not in environment("worker")


DATABASE_URLS = {"migrate": "DATABASE_URL", "intake": "INTAKE_DATABASE_URL", "agent": "AGENT_DATABASE_URL",
                 "worker": "AGENT_DATABASE_URL"}


def filled(value: str) -> str:
    """A compose value with each ${...} reference replaced by a stand-in, as compose would with .env."""
    return _INTERPOLATION.sub("x" * 24, value)


def test_every_database_url_verifies_the_servers_certificate_and_name():
    from psycopg.conninfo import conninfo_to_dict

    from shared.config import check_database_tls

    for name, variable in DATABASE_URLS.items():
        dsn = filled(environment(name)[variable])
        params = conninfo_to_dict(dsn)
        assert params.get("sslmode") == "verify-full", f"{name}'s {variable} must set sslmode=verify-full"
        assert params["host"] == "postgres"
        assert bind_mounts(name).get(params.get("sslrootcert", "")) == "./deploy/tls/ca.pem", (
            f"{name} must mount the CA its {variable} names as sslrootcert")
        check_database_tls(variable, dsn)  # what the service itself checks at start
    for name in HAPEX_SERVICES:
        for key, value in environment(name).items():
            if parse_url(value).scheme.startswith("postgres"):
                assert key == DATABASE_URLS[name], f"{name}'s {key} is a database URL the test does not know"


def test_postgres_serves_tls_with_its_own_certificate_and_refuses_connections_without_it():
    argv = [str(part) for part in service("postgres")["command"]]
    assert argv[0] == "postgres"
    settings = dict(arg.split("=", 1) for previous, arg in zip(argv, argv[1:], strict=False) if previous == "-c")
    assert settings["ssl"] == "on"
    mounts = bind_mounts("postgres")
    assert mounts[settings["ssl_cert_file"]] == "./deploy/tls/postgres.pem"
    assert mounts[settings["ssl_key_file"]] == "./deploy/tls/postgres-key.pem"
    for name in HAPEX_SERVICES:
        assert "./deploy/tls/postgres-key.pem" not in bind_mounts(name).values()
    rules = [line.split() for line in (ROOT / mounts[settings["hba_file"]]).read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    network = [rule for rule in rules if rule[0] != "local"]
    assert network[0] == ["hostnossl", "all", "all", "all", "reject"], "a connection without TLS must be refused first"
    assert all(rule[0] in ("hostnossl", "hostssl") for rule in network), "a `host` line would allow clear text"
    assert all(rule[-1] == "scram-sha-256" for rule in network if rule[0] == "hostssl")
    # The certificate the services verify names the host they connect to.
    readme = README.read_text(encoding="utf-8")
    assert "for name in agent intake postgres" in readme and "DNS:$name" in readme and "postgres-key.pem" in readme


def test_compose_holds_no_secret_values():
    for name, config in compose()["services"].items():
        for key, value in environment(name).items():
            if key in secret_names() or _SECRET_WORDS.search(key):
                match = _INTERPOLATION.fullmatch(value)
                assert match, f"{name}'s {key} must be a ${{...}} reference to .env"
                assert match.group(2) in (None, ":?", "?") or match.group(3) == "", (
                    f"{name}'s {key} has a default value"
                )
            parts = parse_url(value)
            if parts.scheme.startswith("postgres"):
                assert parts.password == REFERENCE, f"{name}'s {key} needs a ${{...}} password"
    assert not _high_entropy_words(COMPOSE_FILE.read_text(encoding="utf-8"))


def _high_entropy_words(text: str) -> list[str]:
    without_references = _INTERPOLATION.sub(" ", text)
    words = re.findall(r"[A-Za-z0-9+/_=-]{20,}", without_references)
    return [
        word for word in words if re.search(r"[a-z]", word) and re.search(r"[A-Z]", word) and re.search(r"[0-9]", word)
    ]


def _decodes_to_a_key(word: str) -> bool:
    for decode in (lambda w: base64.b64decode(w, validate=True), base64.urlsafe_b64decode):
        try:
            if len(decode(word + "=" * (-len(word) % 4))) == 32:
                return True
        except (binascii.Error, ValueError):
            continue
    return False


@pytest.mark.parametrize(
    "path",
    [COMPOSE_FILE, ENV_EXAMPLE, DOCKERFILE, ROOT / "deploy" / "README.md", *sorted(POSTGRES_INIT.iterdir())],
    ids=lambda path: path.relative_to(ROOT).as_posix(),
)
def test_no_file_holds_a_32_byte_base64_key(path):
    words = re.findall(r"[A-Za-z0-9+/_-]{40,46}={0,2}", path.read_text(encoding="utf-8"))
    keys = [word for word in words if _decodes_to_a_key(word)]
    assert not keys, f"{path.name} holds what parses as an encryption key"


def test_no_value_is_a_key_the_agent_would_accept():
    values = [value for name in compose()["services"] for value in environment(name).values()]
    values += [value for value, _ in env_example().values()]
    for value in values:
        with pytest.raises(ConfigError):
            parse_key("CREDENTIAL_ENCRYPTION_KEY", value)


def test_the_key_detector_detects_a_key():
    sample = base64.b64encode(bytes(range(32))).decode()
    assert _decodes_to_a_key(sample)
    assert _decodes_to_a_key(base64.urlsafe_b64encode(bytes(range(200, 232))).decode().rstrip("="))
    assert not _decodes_to_a_key("a" * 40)


# --- .env.example ------------------------------------------------------------------------


def test_env_example_documents_every_variable_the_code_reads():
    conftest = (ROOT / "tests" / "conftest.py").read_text(encoding="utf-8")
    assert all(f'"{name}"' in conftest for name in TEST_SUITE_VARIABLES), "the test suite no longer reads these"
    entries = set(env_example())
    missing = {name for name in all_names_read() if not documented(name, entries)}
    assert not missing, f".env.example does not document {sorted(missing)}"


def test_env_example_documents_nothing_the_code_and_compose_do_not_use():
    used = all_names_read() | compose_only_names()
    stale = {entry for entry in env_example() if not any(documented(name, {entry}) for name in used)}
    assert not stale, f".env.example documents variables nothing reads: {sorted(stale)}"


def test_env_example_families_are_commented_out():
    # docker compose parses .env: a line like HAPEX_<PROVIDER>_X= there would be an error.
    for entry, (_, commented) in env_example().items():
        assert commented or re.fullmatch(_NAME, entry), f"{entry} must be commented out in .env.example"


def test_env_example_has_a_comment_for_each_variable():
    lines = [line.strip() for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()]
    for index, line in enumerate(lines):
        match = _ENV_LINE.match(line)
        if match:
            previous = lines[index - 1] if index else ""
            assert previous.startswith("#") and not _ENV_LINE.match(previous), (
                f"{match.group(2)} in .env.example has no comment line above it"
            )


def test_env_example_secrets_are_empty_placeholders():
    for name, (value, _) in env_example().items():
        if name in secret_names() or _SECRET_WORDS.search(name):
            assert value == "", f".env.example gives {name} a value; leave secrets empty"
        if urlsplit(value).scheme.startswith("postgres"):
            assert urlsplit(value).password is None, f".env.example's {name} holds a password"
    assert not _high_entropy_words(ENV_EXAMPLE.read_text(encoding="utf-8"))


def test_compose_defaults_agree_with_env_example():
    """The ${NAME:-default} defaults in compose are the values .env.example shows."""
    documented = env_example()
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for name, operator, default in _INTERPOLATION.findall(text):
        assert name in documented, f"{name} is used by docker-compose.yml but not in .env.example"
        if operator == ":-":
            assert documented[name][0] == default, f"{name}: compose default {default!r}"
        assert not documented[name][1], f"{name} is commented out in .env.example but compose uses it"


# --- the image ---------------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_runs_hapex_as_a_non_root_user():
    instructions = _dockerfile_instructions()
    assert instructions[0][0] == "ARG" and instructions[1] == ("FROM", "${PYTHON_IMAGE}")
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    exposed = {int(port) for keyword, rest in instructions if keyword == "EXPOSE" for port in rest.split()}
    assert exposed == {port for _, port in SERVICE_PORTS.values()}
    cmd = [rest for keyword, rest in instructions if keyword == "CMD"][-1]
    argv = json.loads(cmd)
    assert argv[0] == "hapex"
    build_parser().parse_args(argv[1:])
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "requirements-prod.lock" in runs and "--no-deps" in runs and "--no-build-isolation" in runs


def test_the_base_image_is_pinned_by_digest():
    name, _, value = _dockerfile_instructions()[0][1].partition("=")
    assert name == "PYTHON_IMAGE"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+@sha256:[0-9a-f]{64}", value)


def _lock(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def _runtime_closure() -> set[str]:
    """pyproject's runtime dependencies and theirs, as the installed distributions declare them."""
    from importlib.metadata import distribution

    from packaging.requirements import Requirement

    names: set[str] = set()
    pending = [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    while pending:
        requirement = pending.pop()
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        extras = sorted(requirement.extras) or [""]
        key = f"{name}[{','.join(extras)}]"
        if key in names:
            continue
        names.add(key)
        for text in distribution(requirement.name).requires or []:
            needed = Requirement(text)
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in extras):
                pending.append(needed)
    return {key.partition("[")[0] for key in names}


def test_the_image_installs_only_what_the_product_runs():
    production, full = _lock(ROOT / "requirements-prod.lock"), _lock(ROOT / "requirements.lock")
    assert production.items() <= full.items(), "requirements-prod.lock must pin as requirements.lock does"
    assert set(production) == _runtime_closure() | {"setuptools"}
    for tool in ("pytest", "playwright", "ruff", "responses", "aiosmtpd", "mypy", "schemathesis", "import-linter"):
        assert tool in full and tool not in production


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".venv", ".data", ".git", "deploy/tls"} <= patterns
