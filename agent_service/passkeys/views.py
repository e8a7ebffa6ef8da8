"""Passkey routes: register, remove and prove (a client's own routes), and sign-in (clientless).

`/v1/clients/<client_id>/users/<user_id>/passkeys...` carry the signed-in user's session proof like
any tenant route; one of them checks a fresh proof (before removing a passkey) and answers only
accepted or refused. `/v1/passkeys/...` sign a person in before any session exists, so they carry
none (auth.CLIENTLESS_ENDPOINTS), exactly as /v1/sign-in does: instead of a password the passkey
(its device and the user's PIN or biometric) is the whole sign-in; as the second step it must come
with the pending sign-in's ticket that /v1/sign-in answered for the password, and proves that
ticket's user only. Either way the session is started here, by the sign-in module's one
`start_session`, and its secret answered once; the intake only sets it as the cookie. This is the
one place a passkey is verified.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from agent_service.config import AgentConfig
from agent_service.contract import contract
from agent_service.db import get_db
from agent_service.passkeys import repository
from agent_service.passkeys.schemas import (
    PasskeyCheckSchema,
    PasskeyOptionsSchema,
    PasskeyRemovedSchema,
    ProofSchema,
    ProvedSchema,
    RegisteredSchema,
    RegisterSchema,
    RegistrationOptionsRequestSchema,
    SignInOptionsRequestSchema,
)
from agent_service.second_factor.views import UserNotFound
from agent_service.sign_in import views as sign_in
from agent_service.sign_in.schemas import SignedInSchema
from shared.db import tenant_transaction
from shared.db.errors import ReferencedRowMissing
from shared.db.pool import Connection
from shared.errors import HapexError, NotFound, ValidationFailed

logger = logging.getLogger(__name__)
blueprint = Blueprint("passkeys", __name__, url_prefix="/v1/clients/<uuid:client_id>/users/<uuid:user_id>/passkeys")
sign_in_blueprint = Blueprint("passkey_sign_in", __name__, url_prefix="/v1/passkeys")

RP_NAME = "Hapex"
TIMEOUT_MS = 120_000  # what the browser is told; the challenge itself is good for five minutes
# What user_passkeys keeps (migration 0022): a credential id within WebAuthn's bound (at most 1023
# bytes; 16 at least, as the spec asks of an authenticator) and a COSE public key of sane size.
CREDENTIAL_ID_BYTES = range(16, 1024)
PUBLIC_KEY_BYTES = range(16, 2049)


class PasskeysUnavailable(HapexError):
    name = "passkeys_unavailable"
    status = 409
    message = "Passkeys need INTAKE_PUBLIC_URL, the origin they are bound to; this deployment has none."


class NoPasskeys(NotFound):
    name = "no_passkeys"
    message = "This user has no passkey."


class RegistrationRefused(HapexError):
    name = "passkey_refused"
    status = 400
    message = "The passkey's answer did not verify (challenge, origin, or signature); nothing was stored."


class AlreadyRegistered(HapexError):
    name = "passkey_already_registered"
    status = 409
    message = "This passkey is already registered in this business."


@dataclass(frozen=True)
class RelyingParty:
    """The origin a passkey is bound to, from configuration alone."""

    rp_id: str
    origin: str

    @classmethod
    def of(cls, config: AgentConfig) -> RelyingParty:
        if not config.intake_public_url:
            raise PasskeysUnavailable()
        parts = urlsplit(config.intake_public_url)
        assert parts.hostname is not None  # the configuration checked it names a host
        return cls(rp_id=parts.hostname, origin=f"{parts.scheme}://{parts.netloc}")


def _relying_party() -> RelyingParty:
    return RelyingParty.of(current_app.config["HAPEX"])


def user_handle(client_id: uuid.UUID, user_id: uuid.UUID) -> bytes:
    """What the passkey keeps as its user's id: whose tenant to open when it signs in with no name given."""
    return client_id.bytes + user_id.bytes


def _challenge_hash(challenge: bytes) -> bytes:
    return hashlib.sha256(challenge).digest()


def _answered_challenge(client_data_b64: Any) -> bytes:
    """The challenge the browser says it signed (checked against a live one before anything else)."""
    if not isinstance(client_data_b64, str) or len(client_data_b64) > 4096:
        raise ValueError("clientDataJSON")
    challenge: bytes = parse_client_data_json(base64url_to_bytes(client_data_b64)).challenge
    return challenge


def _options_dict(options: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(options_to_json(options))
    return loaded


@blueprint.post("/registration-options")
@contract(PasskeyOptionsSchema, body=RegistrationOptionsRequestSchema, refusals=(PasskeysUnavailable, UserNotFound))
def registration_options(client_id: uuid.UUID, user_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """Options for navigator.credentials.create(): a discoverable credential with user verification."""
    rp = _relying_party()
    options = generate_registration_options(
        rp_id=rp.rp_id, rp_name=RP_NAME, user_name=data["account_name"], user_id=user_handle(client_id, user_id),
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.REQUIRED),
    )
    try:
        with tenant_transaction(get_db(), client_id) as conn:
            known = repository.user_credentials(conn, client_id=client_id, user_id=user_id)
            repository.insert_challenge(conn, client_id=client_id, user_id=user_id,
                                        challenge_hash=_challenge_hash(options.challenge), purpose="register")
    except ReferencedRowMissing:
        raise UserNotFound() from None
    options.exclude_credentials = [PublicKeyCredentialDescriptor(id=bytes(row["credential_id"])) for row in known]
    return {"options": _options_dict(options)}


@blueprint.post("")
@contract(RegisteredSchema, status=201, body=RegisterSchema,
          refusals=(PasskeysUnavailable, UserNotFound, RegistrationRefused, AlreadyRegistered))
def register(client_id: uuid.UUID, user_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """Verify the browser's new credential against this user's live registration challenge, then keep it."""
    rp = _relying_party()
    log = {"client_id": client_id, "user_id": user_id}
    try:
        credential = parse_registration_credential_json(data["credential"])
        challenge = _answered_challenge(data["credential"].get("response", {}).get("clientDataJSON"))
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError):
        logger.info("passkey registration refused", extra={**log, "status": "malformed"})
        raise RegistrationRefused() from None
    with tenant_transaction(get_db(), client_id) as conn:
        live = repository.spend_challenge(conn, client_id=client_id, user_id=user_id,
                                          challenge_hash=_challenge_hash(challenge), purpose="register")
    if not live:
        logger.info("passkey registration refused", extra={**log, "status": "challenge"})
        raise RegistrationRefused()
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp.rp_id,
            expected_origin=rp.origin, require_user_verification=True)
    except (WebAuthnException, ValueError, TypeError, KeyError):
        logger.info("passkey registration refused", extra={**log, "status": "unverified"})
        raise RegistrationRefused() from None
    if (len(verified.credential_id) not in CREDENTIAL_ID_BYTES
            or len(verified.credential_public_key) not in PUBLIC_KEY_BYTES):
        logger.info("passkey registration refused", extra={**log, "status": "out_of_bounds"})
        raise RegistrationRefused()
    known = {t.value for t in AuthenticatorTransport}
    transports = sorted({t.value if isinstance(t, AuthenticatorTransport) else str(t)
                         for t in (credential.response.transports or [])} & known)
    try:
        with tenant_transaction(get_db(), client_id) as conn:
            passkey_id = repository.insert_passkey(
                conn, client_id=client_id, user_id=user_id, credential_id=verified.credential_id,
                public_key=verified.credential_public_key, sign_count=verified.sign_count, transports=transports,
                label=data["label"].strip() or "Passkey")
    except ReferencedRowMissing:
        raise UserNotFound() from None  # removed meanwhile
    if passkey_id is None:
        raise AlreadyRegistered()
    logger.info("passkey registered", extra=log)
    return {"passkey_id": passkey_id}


@blueprint.delete("/<uuid:passkey_id>")
@contract(PasskeyRemovedSchema, refusals=(UserNotFound,))
def remove(client_id: uuid.UUID, user_id: uuid.UUID, passkey_id: uuid.UUID) -> dict[str, Any]:
    """Forget one passkey of the user (the intake has checked a fresh proof first)."""
    with tenant_transaction(get_db(), client_id) as conn:
        removed = repository.delete_passkey(conn, client_id=client_id, user_id=user_id, passkey_id=passkey_id)
    if removed:
        logger.info("passkey removed", extra={"client_id": client_id, "user_id": user_id})
    return {"removed": removed}


class _Assertion:
    """The browser's answer to navigator.credentials.get(), parsed, and the challenge it says it signed."""

    def __init__(self, credential_json: dict[str, Any]) -> None:
        self.credential = parse_authentication_credential_json(credential_json)
        self.challenge = _answered_challenge(credential_json.get("response", {}).get("clientDataJSON"))
        self.challenge_hash = _challenge_hash(self.challenge)


def _assertion(credential_json: dict[str, Any]) -> _Assertion | None:
    try:
        return _Assertion(credential_json)
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError):
        logger.info("passkey refused", extra={"status": "malformed"})
        return None


def _verified(conn: Connection, rp: RelyingParty, assertion: _Assertion, client_id: uuid.UUID,
              user_id: uuid.UUID, *, require_user_verification: bool) -> bool:
    """Whether the assertion is signed by a passkey of this user (its challenge already spent); moves its counter."""
    log = {"client_id": client_id, "user_id": user_id}
    row = repository.lock_credential(conn, client_id=client_id, user_id=user_id,
                                     credential_id=bytes(assertion.credential.raw_id))
    if row is None:
        logger.info("passkey refused", extra={**log, "status": "unknown_credential"})
        return False
    try:
        verified = verify_authentication_response(
            credential=assertion.credential, expected_challenge=assertion.challenge, expected_rp_id=rp.rp_id,
            expected_origin=rp.origin, credential_public_key=bytes(row["public_key"]),
            credential_current_sign_count=row["sign_count"], require_user_verification=require_user_verification)
    except (WebAuthnException, ValueError, TypeError, KeyError):
        logger.info("passkey refused", extra={**log, "status": "unverified"})
        return False
    repository.record_use(conn, client_id=client_id, passkey_id=row["passkey_id"], sign_count=verified.new_sign_count)
    return True


def _spent(conn: Connection, assertion: _Assertion, client_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    live = repository.spend_challenge(conn, client_id=client_id, user_id=user_id,
                                      challenge_hash=assertion.challenge_hash, purpose="second_factor")
    if not live:
        logger.info("passkey refused", extra={"client_id": client_id, "user_id": user_id, "status": "challenge"})
    return live


def _user_options(conn: Connection, rp: RelyingParty, client_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any]:
    """Options for one user's own passkeys, with a challenge of theirs (the second step, or a fresh proof)."""
    known = repository.user_credentials(conn, client_id=client_id, user_id=user_id)
    if not known:
        raise NoPasskeys()
    options = generate_authentication_options(
        rp_id=rp.rp_id, timeout=TIMEOUT_MS, user_verification=UserVerificationRequirement.PREFERRED,
        allow_credentials=[PublicKeyCredentialDescriptor(
            id=bytes(row["credential_id"]),
            transports=[AuthenticatorTransport(t) for t in row["transports"]] or None) for row in known])
    repository.insert_challenge(conn, client_id=client_id, user_id=user_id,
                                challenge_hash=_challenge_hash(options.challenge), purpose="second_factor")
    return {"options": _options_dict(options)}


@blueprint.post("/proof-options")
@contract(PasskeyOptionsSchema, refusals=(PasskeysUnavailable, NoPasskeys, UserNotFound))
def proof_options(client_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any]:
    """Options for a signed-in user's fresh proof with one of their passkeys."""
    rp = _relying_party()
    with tenant_transaction(get_db(), client_id) as conn:
        return _user_options(conn, rp, client_id, user_id)


@blueprint.post("/proof")
@contract(ProvedSchema, body=ProofSchema, refusals=(PasskeysUnavailable, UserNotFound))
def proof(client_id: uuid.UUID, user_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """Whether a passkey of this signed-in user answers their live challenge; starts nothing."""
    rp = _relying_party()
    assertion = _assertion(data["credential"])
    if assertion is None:
        return {"accepted": False}
    with tenant_transaction(get_db(), client_id) as conn:
        accepted = (_spent(conn, assertion, client_id, user_id)
                    and _verified(conn, rp, assertion, client_id, user_id, require_user_verification=False))
    return {"accepted": accepted}


def _pending(data: dict[str, Any]) -> tuple[uuid.UUID, str] | None:
    """The pending sign-in the second step names (its client and ticket), or None for no password at all."""
    client_id, ticket = data["client_id"], data["ticket"]
    if (client_id is None) != (ticket is None):
        raise ValidationFailed(fields={"ticket": ["Give both client_id and ticket, or neither."]})
    return None if client_id is None else (client_id, ticket)


@sign_in_blueprint.post("/options")
@contract(PasskeyOptionsSchema, body=SignInOptionsRequestSchema, refusals=(PasskeysUnavailable, NoPasskeys))
def sign_in_options(data: dict[str, Any]) -> dict[str, Any]:
    """Options for navigator.credentials.get(): the pending sign-in's user's passkeys, or any passkey of this site."""
    rp = _relying_party()
    pending = _pending(data)
    if pending is None:
        options = generate_authentication_options(rp_id=rp.rp_id, timeout=TIMEOUT_MS,
                                                  user_verification=UserVerificationRequirement.REQUIRED)
        with get_db().transaction() as conn:
            repository.issue_sign_in_challenge(conn, challenge_hash=_challenge_hash(options.challenge))
        return {"options": _options_dict(options)}
    client_id, ticket = pending
    with tenant_transaction(get_db(), client_id) as conn:
        user_id = sign_in.ticket_user(conn, client_id, ticket)
        if user_id is None:
            raise NoPasskeys()  # no live pending sign-in: nothing to offer, and nothing said of anyone
        return _user_options(conn, rp, client_id, user_id)


@sign_in_blueprint.post("/check")
@contract(SignedInSchema, body=PasskeyCheckSchema, refusals=(PasskeysUnavailable,))
def check(data: dict[str, Any]) -> dict[str, Any]:
    """A passkey's assertion: instead of a password (its user handle names the tenant, user verification
    required), or with a pending sign-in's ticket (its user's passkey only). On success the session starts
    here and its secret is answered once; the challenge, the ticket and the counter are spent with it."""
    rp = _relying_party()
    pending = _pending(data)
    assertion = _assertion(data["credential"])
    if assertion is None:
        return sign_in.REFUSED
    if pending is None:
        # Instead of a password: the challenge names no one, the passkey's user handle names its tenant.
        with get_db().transaction() as conn:
            live = repository.spend_sign_in_challenge(conn, challenge_hash=assertion.challenge_hash)
        handle = assertion.credential.response.user_handle
        if not live or handle is None or len(handle) != 32:
            logger.info("passkey refused", extra={"status": "challenge" if not live else "user_handle"})
            return sign_in.REFUSED
        client_id, user_id = uuid.UUID(bytes=bytes(handle[:16])), uuid.UUID(bytes=bytes(handle[16:]))
        with tenant_transaction(get_db(), client_id) as conn:
            if not _verified(conn, rp, assertion, client_id, user_id, require_user_verification=True):
                return sign_in.REFUSED
            session = sign_in.start_session(conn, client_id, user_id, data)
        return sign_in.signed_in(client_id, user_id, session)
    client_id, ticket = pending
    # The second step: the ticket's attempt counts (in its own transaction) whether or not the passkey does.
    ticket_user = sign_in.count_ticket_attempt(client_id, ticket)
    if ticket_user is None:
        logger.info("passkey refused", extra={"client_id": client_id, "status": "ticket"})
        return sign_in.REFUSED
    with tenant_transaction(get_db(), client_id) as conn:
        if not (_spent(conn, assertion, client_id, ticket_user)
                and _verified(conn, rp, assertion, client_id, ticket_user, require_user_verification=False)):
            return sign_in.REFUSED
        sign_in.spend_ticket(conn, client_id, ticket)
        session = sign_in.start_session(conn, client_id, ticket_user, data)
    return sign_in.signed_in(client_id, ticket_user, session)
