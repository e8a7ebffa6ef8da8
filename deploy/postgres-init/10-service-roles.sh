#!/bin/sh
# Creates the service roles hapex_intake and hapex_agent with their passwords.
#
# The postgres image runs this once, when it initialises an empty data directory, before
# `hapex db migrate` runs. Migration 0003 creates these roles only if they do not exist, so
# it keeps these and gives them their grants. For a database initialised without this
# script, set the passwords with ALTER ROLE (deploy/README.md).
#
# The passwords go into postgresql:// URLs in docker-compose.yml, so they are limited to
# URL-safe characters; `openssl rand -hex 32` makes a good one.
set -eu

for variable in HAPEX_INTAKE_DB_PASSWORD HAPEX_AGENT_DB_PASSWORD; do
    eval "value=\${$variable:-}"
    if [ "${#value}" -lt 24 ]; then
        echo "10-service-roles.sh: $variable must be set, at least 24 characters" >&2
        exit 1
    fi
    case "$value" in
        *[!A-Za-z0-9._~-]*)
            echo "10-service-roles.sh: $variable may only use A-Z a-z 0-9 . _ ~ -" >&2
            exit 1
            ;;
    esac
done

# \getenv keeps the passwords off psql's command line; :'name' quotes them as literals.
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
\getenv intake_password HAPEX_INTAKE_DB_PASSWORD
\getenv agent_password HAPEX_AGENT_DB_PASSWORD
CREATE ROLE hapex_intake LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
    PASSWORD :'intake_password';
CREATE ROLE hapex_agent LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
    PASSWORD :'agent_password';
SQL
