"""Which failed connections are the server refusing who we are, and which are the server being away."""

from __future__ import annotations

import psycopg
import pytest

from shared.db.errors import refuses_credentials

SOCKET = 'connection failed: connection to server at "10.0.0.5", port 5432 failed: '


@pytest.mark.parametrize("text", [
    SOCKET + 'FATAL:  password authentication failed for user "hapex_agent"',
    SOCKET + 'FATAL:  no pg_hba.conf entry for host "10.0.0.9", user "hapex_agent", database "hapex"',
    SOCKET + 'FATAL:  role "hapex_agnet" does not exist',
])
def test_a_refused_role_or_password_is_configuration(text):
    assert refuses_credentials(psycopg.OperationalError(text))


@pytest.mark.parametrize("text", [
    SOCKET + "Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?",
    SOCKET + "FATAL:  the database system is starting up",
    SOCKET + 'FATAL:  database "hapex" is not currently accepting connections',
    SOCKET + "timeout expired",
])
def test_a_server_that_is_away_is_an_outage(text):
    assert not refuses_credentials(psycopg.OperationalError(text))
