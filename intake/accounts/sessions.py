"""Server-side sessions: a random token in a __Host- cookie, only its SHA-256 in PostgreSQL.

The token a request's cookie carried is also the client's proof on this request's agent calls
(intake.agent_client.ClientProof): the agent hashes it and finds the live session of that client.
The intake's database role can neither read a session hash nor start a session: the agent starts
one after it checked the password (agent_service/sign_in), and hands back only its secret; the
intake extends and ends sessions through the definer functions of migration 0016.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app, g, request
from werkzeug.wrappers import Response

from intake.accounts import repository
from intake.agent_client import ClientProof, ClientProofRefused, current_proof, use_proof
from intake.config import IntakeConfig
from intake.db import get_db
from shared.db import tenant_transaction
from shared.db.pool import Connection
from shared.passwords import SESSION_SECRET_BYTES
from shared.secret import Secret

logger = logging.getLogger(__name__)

TOKEN_BYTES = SESSION_SECRET_BYTES  # drawn by the agent (agent_service/sign_in)
# A session is written at most this often (half the idle limit if that is shorter): a page view
# within it is one read and no commit. The idle limit then counts from up to this much before
# the last request.
TOUCH_EVERY = timedelta(minutes=1)
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class SessionIdentity:
    """Who a request is from: the client whose rows it may see, and the user."""

    client_id: uuid.UUID
    user_id: uuid.UUID
    session_hash: bytes


def cookie_name(config: IntakeConfig) -> str:
    """__Host- requires Secure, a path of / and no Domain, which pins the cookie to this host."""
    return "__Host-hapex_session" if config.secure_cookies else "hapex_session"


def csrf_cookie_name(config: IntakeConfig) -> str:
    return "__Host-hapex_csrf" if config.secure_cookies else "hapex_csrf"


def _config() -> IntakeConfig:
    return current_app.config["HAPEX"]  # type: ignore[no-any-return]  # Flask's app state holds Any


def idle_timeout(config: IntakeConfig) -> timedelta:
    return timedelta(minutes=config.session_idle_minutes)


def absolute_timeout(config: IntakeConfig) -> timedelta:
    return timedelta(hours=config.session_absolute_hours)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def new_session_settings() -> dict[str, Any]:
    """What the agent needs to start this browser's session: its device label and the limits."""
    config = _config()
    return {"device": device_label(request.headers.get("User-Agent", "")),
            "idle_minutes": config.session_idle_minutes, "absolute_hours": config.session_absolute_hours}


def adopt_session(response: Response, *, client_id: uuid.UUID, secret: Secret) -> None:
    """This browser's new session, which the agent started after checking the password (and code):
    whatever session the browser had before is ended, and the new secret becomes its cookie."""
    config = _config()
    end_current_session()
    token = secret.reveal()
    response.set_cookie(
        cookie_name(config), token, path="/", secure=config.secure_cookies, httponly=True,
        samesite="Lax",
    )
    use_proof(ClientProof.session(client_id, token))


def current_secret(client_id: uuid.UUID) -> str:
    """This request's session secret, for a definer function that checks it is the client's live one."""
    proof = current_proof()
    if proof is None or proof.kind != "session" or proof.client_id != client_id:
        raise ClientProofRefused("client_proof_required")
    secret: str = proof.secret.reveal()
    return secret


_BROWSERS = (("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Chromium/", "Chromium"),
             ("Safari/", "Safari"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def device_label(user_agent: str) -> str:
    """A short label for the account page ("Firefox on Linux"); the header itself is never stored."""
    browser = next((name for marker, name in _BROWSERS if marker in user_agent), None)
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"


def list_sessions(client_id: uuid.UUID, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The user's live sessions: device, when started and last seen (the intake may not read their hashes)."""
    with tenant_transaction(get_db(), client_id) as conn:
        return repository.list_user_sessions(conn, client_id=client_id, user_id=user_id)


def end_current_session() -> None:
    """Delete this request's session row, if it has one."""
    identity: SessionIdentity | None = g.get("identity")
    if identity is None:
        return
    with tenant_transaction(get_db(), identity.client_id) as conn:
        repository.delete_session(conn, session_hash=identity.session_hash)
    g.identity = None
    use_proof(None)


def end_user_sessions(conn: Connection, *, client_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """End every session of one user (a new password, a removed member), inside the caller's transaction."""
    return repository.delete_user_sessions(conn, client_id=client_id, user_id=user_id)


def clear_cookie(response: Response) -> None:
    config = _config()
    response.delete_cookie(
        cookie_name(config), path="/", secure=config.secure_cookies, httponly=True, samesite="Lax"
    )


def load_identity() -> SessionIdentity | None:
    """The live session named by the request's cookie; an ended one is deleted and forgotten."""
    config = _config()
    token = request.cookies.get(cookie_name(config))
    if token is None:
        return None
    if not _TOKEN_SHAPE.match(token):
        g.drop_session_cookie = True
        return None
    session_hash = hash_token(token)
    idle, absolute = idle_timeout(config), absolute_timeout(config)
    db = get_db()
    with db.transaction() as conn:
        found = repository.find_session(conn, session_hash=session_hash, idle=idle, absolute=absolute,
                                        touch_every=min(TOUCH_EVERY, idle / 2))
    if found is None:
        g.drop_session_cookie = True
        return None
    client_id, user_id = found["client_id"], found["user_id"]
    if found["live"] and found["touched_lately"]:
        use_proof(ClientProof.session(client_id, token))
        return SessionIdentity(client_id=client_id, user_id=user_id, session_hash=session_hash)
    with tenant_transaction(db, client_id) as conn:
        user_id = None
        if found["live"]:
            user_id = repository.touch_session(conn, session_hash=session_hash, idle=idle, absolute=absolute)
        if user_id is None:
            repository.delete_session(conn, session_hash=session_hash)
    if user_id is None:
        logger.info("session ended by timeout", extra={"client_id": client_id})
        g.drop_session_cookie = True
        return None
    use_proof(ClientProof.session(client_id, token))
    return SessionIdentity(client_id=client_id, user_id=user_id, session_hash=session_hash)
